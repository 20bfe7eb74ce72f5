"""GLUE (Wang et al., 2019): task specs and a parser for the official `glue_data` TSV files.

The TSVs contain unpaired double quotes, so they are read with quoting off (`csv.QUOTE_NONE`);
default CSV quoting silently merges rows. CoLA train/dev have no header (columns: source, label,
original mark, sentence); MRPC files start with a UTF-8 BOM (read as `utf-8-sig`).
Test files have no labels: their examples carry no "label" key.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnlab.tasks.records import Example, make_example, parse_label
from attnlab.tasks.spec import DataError, TaskSpec, register

HUB_PATH = "nyu-mll/glue"
RELEASE_URL = "https://gluebenchmark.com/tasks (or the download_glue_data.py script)"
NLI2 = ("entailment", "not_entailment")


@dataclass(frozen=True)
class TsvFormat:
    text_columns: tuple[str, ...]  # header names in train/dev files
    label_column: str
    hub_columns: tuple[str, ...]  # text columns of the HF hub copy
    # CoLA train/dev: no header; text and label are found by column index instead.
    headerless: tuple[int, int, int] | None = None  # (num_columns, text index, label index)


FORMATS: dict[str, TsvFormat] = {}


def _glue(
    short: str,
    folder: str,
    fmt: TsvFormat,
    *,
    labels: tuple[str, ...] = (),
    codes: tuple[str, ...] = (),
    metrics: tuple[str, ...] = ("accuracy",),
    primary: str = "accuracy",
    max_length: int = 128,
    val_files: Mapping[str, str] | None = None,
    regression: bool = False,
) -> None:
    splits = {"train": f"{folder}/train.tsv"}
    splits.update(val_files or {"validation": f"{folder}/dev.tsv"})
    splits.update({"test": f"{folder}/test.tsv"} if val_files is None else {})
    spec = TaskSpec(
        name=f"glue/{short}",
        benchmark="glue",
        language="en",
        text_fields=("text_a", "text_b")[: len(fmt.text_columns)],
        labels=labels,
        label_codes=codes,
        metrics=metrics,
        primary_metric=primary,
        splits=splits,
        hub_path=HUB_PATH,
        hub_config=short,
        max_length=max_length,
        is_regression=regression,
        release_url=RELEASE_URL,
    )
    FORMATS[spec.name] = fmt
    register(spec)


_PAIR = TsvFormat(("sentence1", "sentence2"), "label", ("sentence1", "sentence2"))
_glue(
    "cola",
    "CoLA",
    TsvFormat(("sentence",), "label", ("sentence",), headerless=(4, 3, 1)),
    labels=("unacceptable", "acceptable"),
    codes=("0", "1"),
    metrics=("mcc",),
    primary="mcc",
    max_length=64,
)
_glue(
    "sst2",
    "SST-2",
    TsvFormat(("sentence",), "label", ("sentence",)),
    labels=("negative", "positive"),
    codes=("0", "1"),
    max_length=64,
)
_glue(
    "mrpc",
    "MRPC",
    TsvFormat(("#1 String", "#2 String"), "Quality", ("sentence1", "sentence2")),
    labels=("not_equivalent", "equivalent"),
    codes=("0", "1"),
    metrics=("f1", "accuracy"),
    primary="f1",
)
_glue(
    "stsb",
    "STS-B",
    TsvFormat(("sentence1", "sentence2"), "score", ("sentence1", "sentence2")),
    metrics=("pearson", "spearman"),
    primary="spearman",
    regression=True,
)
_glue(
    "qqp",
    "QQP",
    TsvFormat(("question1", "question2"), "is_duplicate", ("question1", "question2")),
    labels=("not_duplicate", "duplicate"),
    codes=("0", "1"),
    metrics=("f1", "accuracy"),
    primary="f1",
)
_glue(
    "mnli",
    "MNLI",
    TsvFormat(("sentence1", "sentence2"), "gold_label", ("premise", "hypothesis")),
    labels=("entailment", "neutral", "contradiction"),
    val_files={
        "validation_matched": "MNLI/dev_matched.tsv",
        "validation_mismatched": "MNLI/dev_mismatched.tsv",
        "test_matched": "MNLI/test_matched.tsv",
        "test_mismatched": "MNLI/test_mismatched.tsv",
    },
)
_glue("qnli", "QNLI", TsvFormat(("question", "sentence"), "label", ("question", "sentence")), labels=NLI2)
_glue("rte", "RTE", _PAIR, labels=NLI2, max_length=256)
_glue("wnli", "WNLI", _PAIR, labels=("not_entailment", "entailment"), codes=("0", "1"))


def read_local(spec: TaskSpec, path: Path, split: str) -> list[Example]:
    fmt = FORMATS[spec.name]
    labelled = not split.startswith("test")
    examples: list[Example] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        if fmt.headerless is not None and labelled:
            num_columns, text_index, label_index = fmt.headerless
            text_indices: tuple[int, ...] = (text_index,)
        else:
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: empty file, expected a header line")
            # CoLA test has a header (`index, sentence`) although train/dev do not.
            wanted = ("sentence",) if fmt.headerless is not None else fmt.text_columns
            wanted_all = (*wanted, fmt.label_column) if labelled else wanted
            missing = [c for c in wanted_all if c not in header]
            if missing:
                raise DataError(f"{path}, line 1: header lacks columns {missing}; found {header}")
            num_columns = len(header)
            text_indices = tuple(header.index(c) for c in wanted)
            label_index = header.index(fmt.label_column) if labelled else -1
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != num_columns:
                raise DataError(
                    f"{path}, line {line}: expected {num_columns} tab-separated columns, got {len(row)} "
                    "(a missing column, or a tab inside a field)"
                )
            label = parse_label(spec, row[label_index].strip(), path, line) if labelled else None
            texts = tuple(row[i].strip() for i in text_indices)
            examples.append(make_example(spec, texts, label))
    return examples


def hub_texts(spec: TaskSpec, record: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(record[c]) for c in FORMATS[spec.name].hub_columns)
