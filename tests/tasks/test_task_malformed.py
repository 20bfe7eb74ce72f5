"""Malformed official files give a DataError naming the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnlab.tasks import DataError
from attnlab.tasks.loading import load_examples

RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"
GOOD_RTE = "0\tA man sleeps.\tA person sleeps.\tentailment\n"


def _write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(*records: object) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


STSB_HEADER = "\t".join(["c"] * 7 + ["sentence1", "sentence2", "score"]) + "\n"
WSC_BAD_SPAN = {
    "text": "他说你好",
    "label": "true",
    "target": {"span1_index": 0, "span1_text": "他", "span2_index": 0, "span2_text": "你"},
}
CASES = [
    ("glue/rte", "glue/RTE/dev.tsv", RTE_HEADER + GOOD_RTE + "1\tOnly one.\tentailment\n", 3, "columns"),
    (
        "glue/rte",
        "glue/RTE/dev.tsv",
        RTE_HEADER + GOOD_RTE + "1\tA.\tB.\tmaybe\n",
        3,
        "unknown label 'maybe'",
    ),
    (
        "glue/rte",
        "glue/RTE/dev.tsv",
        "index\tsentence1\tsentence2\n" + GOOD_RTE,
        1,
        "lacks columns ['label']",
    ),
    ("glue/cola", "glue/CoLA/dev.tsv", "gj04\t1\t\tFine.\ngj04\t2\t\tBad.\n", 2, "unknown label '2'"),
    (
        "glue/stsb",
        "glue/STS-B/dev.tsv",
        STSB_HEADER + "\t".join(["x"] * 7 + ["A.", "B.", "high"]),
        2,
        "not a number",
    ),
    (
        "clue/afqmc",
        "clue/afqmc/dev.json",
        _jsonl({"sentence1": "a", "sentence2": "b", "label": "0"}) + "{oops",
        2,
        "not valid JSON",
    ),
    (
        "clue/afqmc",
        "clue/afqmc/dev.json",
        _jsonl({"sentence1": "a", "label": "0"}),
        1,
        "missing field 'sentence2'",
    ),
    (
        "clue/tnews",
        "clue/tnews/dev.json",
        _jsonl({"sentence": "a", "label": "100"}, {"sentence": "b", "label": "105"}),
        2,
        "unknown label '105'",
    ),
    ("clue/cluewsc2020", "clue/cluewsc2020/dev.json", _jsonl(WSC_BAD_SPAN), 1, "span2_text '你' is not at"),
]


@pytest.mark.parametrize(("task", "relative", "text", "line", "fragment"), CASES)
def test_malformed_rows_name_file_and_line(
    tmp_path: Path, task: str, relative: str, text: str, line: int, fragment: str
) -> None:
    path = _write(tmp_path, relative, text)
    with pytest.raises(DataError) as error:
        load_examples(task, "validation", tmp_path)
    message = str(error.value)
    assert f"{path}, line {line}" in message and fragment in message


def test_ocnli_drops_rows_without_majority_label(tmp_path: Path) -> None:
    rows = [
        {"sentence1": "甲", "sentence2": "乙", "label": label} for label in ("neutral", "-", "contradiction")
    ]
    _write(tmp_path, "clue/ocnli/dev.json", _jsonl(*rows))
    examples = load_examples("clue/ocnli", "validation", tmp_path)
    assert [e["label"] for e in examples] == [1, 2]


def test_fewclue_integer_labels_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    _write(tmp_path, "clue/tnews/dev.json", _jsonl({"sentence": "新闻", "label": 116}) + "\n")
    assert load_examples("clue/tnews", "validation", tmp_path) == [{"text_a": "新闻", "label": 14}]


def test_songci_malformed_poem(tmp_path: Path) -> None:
    _write(tmp_path, "lm/chinese-poetry-songci/ci.song.0.json", json.dumps([{"paragraphs": "not a list"}]))
    with pytest.raises(DataError, match=r"ci\.song\.0\.json, poem 0"):
        load_examples("lm/songci", "train", tmp_path)
