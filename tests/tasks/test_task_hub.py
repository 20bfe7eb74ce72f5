"""source="hub": `datasets.load_dataset` is replaced by in-memory copies shaped like the hub datasets."""

from __future__ import annotations

from typing import Any

import datasets
import pytest

from attnlab.tasks import DataError
from attnlab.tasks.loading import load_split


def _fake_hub(
    monkeypatch: pytest.MonkeyPatch, table: dict[str, list[Any]], features: dict[str, Any]
) -> list[Any]:
    calls: list[Any] = []

    def load_dataset(path: str, name: str | None = None, split: str | None = None) -> datasets.Dataset:
        calls.append((path, name, split))
        return datasets.Dataset.from_dict(table, features=datasets.Features(features))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.delenv("ATTNLAB_DATA", raising=False)
    return calls


OCNLI_FEATURES = {
    "sentence1": datasets.Value("string"),
    "sentence2": datasets.Value("string"),
    "label": datasets.ClassLabel(names=["neutral", "entailment", "contradiction"]),  # the hub's order
    "idx": datasets.Value("int32"),
}


def _ocnli(labels: list[int]) -> dict[str, list[Any]]:
    return {
        "sentence1": ["甲", "乙", "丙"],
        "sentence2": ["丁", "戊", "己"],
        "label": labels,
        "idx": [0, 1, 2],
    }


def test_hub_labels_are_mapped_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_hub(monkeypatch, _ocnli([0, 1, 2]), OCNLI_FEATURES)
    train = load_split("clue/ocnli", "train", max_examples=2)  # "auto" without a data root -> hub
    assert calls == [("clue/clue", "ocnli", "train")]
    assert train["label"] == [1, 0] and train["text_b"] == [
        "丁",
        "戊",
    ]  # ours: entailment, neutral, contradiction


def test_hub_test_splits_are_unlabelled(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_hub(monkeypatch, _ocnli([0, 1, -1]), OCNLI_FEATURES)
    test = load_split("clue/ocnli", "test", source="hub")
    assert test.column_names == ["text_a", "text_b"] and len(test) == 3
    with pytest.raises(DataError, match=r"clue/clue/ocnli split 'validation', row 2: no label"):
        load_split("clue/ocnli", "validation", source="hub")


def test_hub_glue_columns_and_regression(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_hub(
        monkeypatch,
        {"sentence1": ["A.", "B."], "sentence2": ["C.", "D."], "label": [4.2, 0.5], "idx": [0, 1]},
        {
            "sentence1": datasets.Value("string"),
            "sentence2": datasets.Value("string"),
            "label": datasets.Value("float32"),
            "idx": datasets.Value("int32"),
        },
    )
    dataset = load_split("glue/stsb", "train", source="hub")
    assert dataset["text_a"] == ["A.", "B."] and dataset["label"] == pytest.approx([4.2, 0.5])


def test_hub_tnews_codes_and_wsc_markers(monkeypatch: pytest.MonkeyPatch) -> None:
    codes = [str(c) for c in (*range(100, 105), *range(106, 111), *range(112, 117))]
    _fake_hub(
        monkeypatch,
        {"sentence": ["新闻"], "label": [14], "idx": [0]},
        {
            "sentence": datasets.Value("string"),
            "label": datasets.ClassLabel(names=codes),
            "idx": datasets.Value("int32"),
        },
    )
    assert load_split("clue/tnews", "train", source="hub")["label"] == [14]
    target = {"span1_index": 0, "span1_text": "他", "span2_index": 2, "span2_text": "你"}
    _fake_hub(
        monkeypatch,
        {"text": ["他说你好"], "label": [0], "target": [target], "idx": [0]},
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["true", "false"]),
            "target": {k: datasets.Value("int32" if k.endswith("index") else "string") for k in target},
            "idx": datasets.Value("int32"),
        },
    )
    wsc = load_split("clue/cluewsc2020", "train", source="hub")
    assert wsc["text_a"] == ["[他]说<你>好"] and wsc["label"] == [1]  # hub "true" = our class 1


def test_reading_comprehension_from_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    from attnlab.tasks.loading import load_examples

    answers = datasets.Sequence({"text": datasets.Value("string"), "answer_start": datasets.Value("int32")})
    calls = _fake_hub(monkeypatch, {"id": ["Q1"], "context": ["北京是首都。"], "question": ["首都？"],
                                    "answers": [{"text": ["北京"], "answer_start": [3]}]},
                      {"id": datasets.Value("string"), "context": datasets.Value("string"),
                       "question": datasets.Value("string"), "answers": answers})
    (cmrc,) = load_examples("clue/cmrc2018", "validation", source="hub")
    assert calls == [("clue/clue", "cmrc2018", "validation")]
    assert cmrc["spans"] == [[0, 2]] and cmrc["alignment"] == ["fixed"]  # answer_start 3 was wrong
    with pytest.raises(DataError, match=r"labelled_test1\.0.*not on the hub"):
        load_examples("clue/c3", "labelled_test1.0", source="hub")
    with pytest.raises(ValueError, match="load_examples"):
        load_split("clue/c3", "validation", source="hub")
