from __future__ import annotations

import copy
import pickle

import pytest

from attnlab.tasks import TASKS, TaskSpec, get_task, tasks_of
from attnlab.tasks.spec import METRIC_NAMES

GLUE = {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
CLUE = {"afqmc", "tnews", "iflytek", "ocnli", "cmnli", "csl", "cluewsc2020"}
CLUE_READING = {"cmrc2018": "span_extraction", "c3": "multiple_choice", "chid_fewclue": "multiple_choice"}
PAIRS = {"mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "afqmc", "ocnli", "cmnli", "csl"}


def test_registry_holds_every_benchmark_task() -> None:
    assert {s.short_name for s in tasks_of("glue")} == GLUE
    assert {s.short_name for s in tasks_of("clue")} == CLUE | set(CLUE_READING)
    assert {s.name for s in tasks_of("lm")} == {"lm/wikitext2", "lm/wikitext103", "lm/songci", "lm/csl_abstracts"}
    assert len(TASKS) == len(GLUE) + len(CLUE) + len(CLUE_READING) + 4  # four LM corpora


@pytest.mark.parametrize("name", sorted(TASKS))
def test_spec_is_consistent(name: str) -> None:
    spec = TASKS[name]
    assert spec.primary_metric in spec.metrics
    assert set(spec.metrics) <= set(METRIC_NAMES)
    assert "train" in spec.splits and spec.val_splits
    assert spec.is_pair == (spec.short_name in PAIRS)
    if spec.is_reading_comprehension:
        assert spec.benchmark == "clue" and spec.kind == CLUE_READING[spec.short_name] and spec.text_fields == ()
        if spec.kind == "span_extraction":
            assert spec.labels == () and spec.metrics == ("exact_match", "char_f1")
        else:  # labels = answer positions; FewCLUE's ChID has no hub copy (the hub's chid is CLUE's CHID)
            assert spec.metrics == ("accuracy",) and len(spec.labels) >= 4
        assert (spec.hub_path is None) == (spec.short_name == "chid_fewclue")
        return
    assert spec.text_fields == ("text_a", "text_b")[: 2 if spec.is_pair else 1]
    assert len(spec.label_codes) == len(spec.labels)
    assert spec.language == ("zh" if spec.benchmark == "clue" or name in ("lm/songci", "lm/csl_abstracts") else "en")
    if spec.is_lm:
        assert spec.num_labels == 0 and not spec.greater_is_better
    elif spec.is_regression:
        assert spec.num_labels == 1 and spec.labels == ()
    else:
        assert spec.num_labels == len(spec.labels) >= 2 and spec.greater_is_better
    if spec.benchmark != "lm":
        assert spec.hub_path in ("nyu-mll/glue", "clue/clue") and spec.hub_config == spec.short_name


def test_label_orders_and_codes() -> None:
    tnews = get_task("clue/tnews")
    assert tnews.num_labels == 15
    assert tnews.label_codes[:6] == ("100", "101", "102", "103", "104", "106")
    assert "105" not in tnews.label_codes and "111" not in tnews.label_codes
    assert tnews.label_index("116") == 14 and tnews.label_index("news_stock") == 12
    assert get_task("glue/rte").label_index("not_entailment") == 1
    assert get_task("glue/cola").labels[1] == "acceptable"  # positive class for MCC / F1 is 1
    assert get_task("glue/mrpc").labels[1] == "equivalent"
    assert get_task("clue/iflytek").num_labels == 119
    mnli = get_task("glue/mnli")
    assert mnli.val_splits == ("validation_matched", "validation_mismatched")


def test_metrics_per_task() -> None:
    assert get_task("glue/cola").metrics == ("mcc",)
    assert get_task("glue/stsb").metrics == ("pearson", "spearman")
    assert set(get_task("glue/mrpc").metrics) == set(get_task("glue/qqp").metrics) == {"f1", "accuracy"}
    assert all(s.metrics == ("accuracy",) for s in tasks_of("clue") if s.kind != "span_extraction")
    assert get_task("clue/cmrc2018").metrics == ("exact_match", "char_f1")


def test_get_task_accepts_short_names_and_specs() -> None:
    spec = get_task("sst2")
    assert spec is TASKS["glue/sst2"] and get_task(spec) is spec


@pytest.mark.parametrize(("typo", "suggestion"), [("glue/sst", "glue/sst2"), ("cluewsc", "cluewsc2020")])
def test_unknown_task_lists_names_and_suggests(typo: str, suggestion: str) -> None:
    with pytest.raises(ValueError, match="Did you mean") as error:
        get_task(typo)
    assert suggestion in str(error.value)
    assert "glue/cola" in str(error.value) and "lm/songci" in str(error.value)


def test_spec_rejects_inconsistent_definitions() -> None:
    base: dict[str, object] = dict(
        name="glue/x",
        benchmark="glue",
        language="en",
        text_fields=("text_a",),
        labels=("a", "b"),
        metrics=("accuracy",),
        primary_metric="accuracy",
        splits={"train": "X/train.tsv"},
    )
    TaskSpec(**base)  # type: ignore[arg-type]
    changes: list[dict[str, object]] = [
        {"primary_metric": "f1"},
        {"metrics": ("bleu",)},
        {"name": "clue/x"},
        {"text_fields": ("text_b",)},
        {"label_codes": ("0",)},
        {"labels": ("a", "a")},
        {"splits": {}},
    ]
    for bad in changes:
        with pytest.raises(ValueError):
            TaskSpec(**{**base, **bad})  # type: ignore[arg-type]


def test_specs_are_read_only_hashable_and_picklable() -> None:
    spec = get_task("glue/mnli")
    with pytest.raises(TypeError):
        spec.splits["train"] = "elsewhere.tsv"  # type: ignore[index]
    assert pickle.loads(pickle.dumps(spec)) == spec == copy.deepcopy(spec)
    assert len({spec, get_task("glue/mnli"), get_task("glue/rte")}) == 2
