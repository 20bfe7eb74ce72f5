from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from attnlab.tasks import TASKS, DataError, get_task
from attnlab.tasks.loading import load_examples, load_split

# Rows after parsing (GLUE: without header; OCNLI: without the "-" rows; WikiText: non-blank lines).
EXPECTED_ROWS = {
    ("glue/cola", "train"): 8551,
    ("glue/cola", "validation"): 1043,
    ("glue/sst2", "train"): 67349,
    ("glue/sst2", "validation"): 872,
    ("glue/mrpc", "train"): 3668,
    ("glue/mrpc", "validation"): 408,
    ("glue/stsb", "validation"): 1500,
    ("glue/qnli", "validation"): 5463,
    ("glue/rte", "train"): 2490,
    ("glue/rte", "validation"): 277,
    ("glue/wnli", "validation"): 71,
    ("clue/afqmc", "validation"): 4316,
    ("clue/tnews", "train"): 53360,
    ("clue/tnews", "validation"): 10000,
    ("clue/iflytek", "validation"): 2599,
    ("clue/ocnli", "train"): 50437,
    ("clue/ocnli", "validation"): 2950,
    ("clue/csl", "validation"): 3000,
    ("clue/cluewsc2020", "validation"): 304,
    ("lm/wikitext2", "validation"): 2461,
    ("clue/cmrc2018", "train"): 10142,
    ("clue/cmrc2018", "validation"): 3219,
    ("clue/c3", "train"): 11869,  # d- + m- parts
    ("clue/c3", "validation"): 3816,
}
MISSING = [
    ("clue/iflytek", "train"),
    ("clue/cmnli", "validation"),
    ("glue/qqp", "train"),
    ("glue/qqp", "validation"),
    ("glue/mnli", "validation_matched"),
    ("glue/qnli", "train"),
]


def _present(data_root: Path, name: str, split: str) -> bool:
    spec = TASKS[name]
    return (data_root / spec.benchmark / spec.splits[split]).exists()


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_with_local_files_loads(data_root: Path, name: str) -> None:
    spec = TASKS[name]
    loaded = 0
    for split in ("train", *spec.val_splits):
        if not _present(data_root, name, split):
            continue
        examples = load_examples(spec, split, data_root)
        loaded += 1
        assert examples, f"{name} {split} is empty"
        assert (name, split) not in EXPECTED_ROWS or len(examples) == EXPECTED_ROWS[name, split]
        for example in examples:
            assert all(isinstance(example[f], str) and example[f] for f in spec.text_fields), example
            if spec.kind == "span_extraction":  # more in test_reading_data.py
                assert example["context"] and example["answers"] and len(example["spans"]) == len(example["answers"])
            elif spec.is_lm:
                assert set(example) == {"text_a"}
            elif spec.is_regression:
                assert 0.0 <= example["label"] <= 5.0
            else:
                assert 0 <= example["label"] < spec.num_labels
    if spec.name not in ("glue/qqp", "glue/mnli", "clue/cmnli", *NOT_IN_DATA_ROOT):
        assert loaded >= 1


NOT_IN_DATA_ROOT = ("lm/wikitext103",)  # the gpu presets' pretraining corpus: from the hub, or placed by the user


def test_a_corpus_missing_from_the_data_root_names_the_file_and_the_hub(data_root: Path) -> None:
    from attnlab.tasks.spec import DataError

    with pytest.raises(DataError) as err:
        load_examples("lm/wikitext103", "train", data_root, source="local")
    assert "wikitext-103/train.txt" in str(err.value)


def test_load_split_builds_a_normalised_dataset(data_root: Path) -> None:
    rte = load_split("glue/rte", "validation", data_root, max_examples=50, seed=1)
    assert rte.column_names == ["text_a", "text_b", "label"] and len(rte) == 50
    assert rte.features["label"].dtype == "int64" and str(rte.split) == "validation"
    stsb = load_split("glue/stsb", "validation", data_root, max_examples=10)
    assert stsb.features["label"].dtype == "float32" and stsb[0]["label"] == 5.0
    test = load_split("glue/sst2", "test", data_root, max_examples=5)
    assert test.column_names == ["text_a"]  # test files carry no labels
    assert os.environ["HF_DATASETS_OFFLINE"] == os.environ["HF_HUB_OFFLINE"] == "1"


def test_label_counts_match_the_data_readme(data_root: Path) -> None:
    def counts(name: str) -> Counter[int]:
        return Counter(e["label"] for e in load_examples(name, "validation", data_root))

    assert counts("glue/cola") == {1: 721, 0: 322}
    assert counts("glue/sst2") == {1: 444, 0: 428}
    assert counts("glue/mrpc") == {1: 279, 0: 129}
    assert counts("glue/rte") == {0: 146, 1: 131}  # entailment = 0 (HF order)
    assert counts("clue/ocnli") == {0: 947, 1: 1103, 2: 900}
    tnews = counts("clue/tnews")
    assert len(tnews) == 15 and tnews[0] == 215 and tnews[12] == 45 and tnews[14] == 659  # 100, 114, 116
    assert counts("clue/afqmc")[1] == 1338


def test_task_specific_normalisation(data_root: Path) -> None:
    csl = load_examples("clue/csl", "validation", data_root, max_examples=1)[0]
    assert csl["text_b"] == "水声学，FFT，波束形成，3维成像声呐" and csl["text_a"].startswith(
        "为解决传统均匀FFT"
    )
    wsc = load_examples("clue/cluewsc2020", "validation", data_root, max_examples=1)[0]
    assert wsc["text_a"].startswith("有些这样的“[洋人]”") and "。<他们>排在" in wsc["text_a"]
    mrpc = load_examples("glue/mrpc", "validation", data_root, max_examples=1)[0]
    assert mrpc["text_a"].startswith("He said")  # BOM and header handled
    wiki = load_examples("lm/wikitext2", "validation", data_root)
    assert "<unk>" not in " ".join(e["text_a"] for e in wiki) and wiki[0]["text_a"] == "= Homarus gammarus ="


def test_songci_split_is_deterministic_and_disjoint(data_root: Path) -> None:
    train = [e["text_a"] for e in load_examples("lm/songci", "train", data_root)]
    val = [e["text_a"] for e in load_examples("lm/songci", "validation", data_root)]
    assert len(train) + len(val) == 21050 and 900 < len(val) < 1200
    assert val == [e["text_a"] for e in load_examples("lm/songci", "validation", data_root)]
    assert "\n" not in train[0] and train[0].endswith("未许禅云亭。")
    assert not set(val) & set(train)  # duplicated poems stay on one side


def test_subsets_are_deterministic(data_root: Path) -> None:
    head = load_examples("glue/sst2", "validation", data_root, max_examples=20)
    assert head == load_examples("glue/sst2", "validation", data_root)[:20]
    seeded = load_examples("glue/sst2", "validation", data_root, max_examples=20, seed=3)
    assert seeded == load_examples("glue/sst2", "validation", data_root, max_examples=20, seed=3)
    assert seeded != head and seeded != load_examples(
        "glue/sst2", "validation", data_root, max_examples=20, seed=4
    )


@pytest.mark.parametrize(("name", "split"), MISSING)
def test_missing_split_names_the_file_and_where_to_get_it(data_root: Path, name: str, split: str) -> None:
    spec = get_task(name)
    expected = data_root / spec.benchmark / spec.splits[split]
    with pytest.raises(DataError) as error:
        load_split(spec, split, data_root)
    message = str(error.value)
    assert str(expected) in message and f"data root: {data_root}" in message
    assert f"{spec.hub_path!r}, {spec.hub_config!r}" in message and spec.release_url in message


def test_unknown_split_and_missing_root(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="valid splits: train, validation_matched"):
        load_split("glue/mnli", "validation", data_root)
    monkeypatch.delenv("ATTNLAB_DATA", raising=False)
    with pytest.raises(DataError, match="ATTNLAB_DATA"):
        load_split("glue/rte", "validation", source="local")
    with pytest.raises(DataError, match="no Hugging Face hub copy"):
        load_split("lm/songci", "train", source="hub")
    with pytest.raises(ValueError, match="source must be"):
        load_split("glue/rte", "validation", data_root, source="web")  # type: ignore[arg-type]
    monkeypatch.setenv("ATTNLAB_DATA", str(data_root))  # "auto" + env -> local files
    assert len(load_split("glue/wnli", "validation")) == 71
