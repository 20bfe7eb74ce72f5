"""Task specifications and the task registry.

A `TaskSpec` is pure data: what the examples look like after normalisation
(`text_a`, optional `text_b`, `label`), which labels exist and in which order, which metrics score
it, and where its files live (locally, relative to the benchmark directory, and on the HF hub).
The parsers for each benchmark live in `glue.py`, `clue.py` and `lm.py`; the reading-comprehension
tasks (`kind` "span_extraction" / "multiple_choice", no `text_fields`) in `clue_mrc.py`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

from attnlab.errors import DataError as DataError  # re-exported

Benchmark = Literal["glue", "clue", "lm"]
Language = Literal["en", "zh"]

# exact_match / char_f1: the official CMRC 2018 EM and F1 (see `mrc_metrics.py`), as fractions.
METRIC_NAMES = ("accuracy", "f1", "mcc", "pearson", "spearman", "perplexity", "exact_match", "char_f1")
# classification (also regression and LM corpora) | span extraction (CMRC 2018) | multiple choice (C3)
TaskKind = Literal["classification", "span_extraction", "multiple_choice"]
TEXT_FIELDS = ("text_a", "text_b")
# Metrics where a lower value is better; all others are maximised.
LOWER_IS_BETTER = frozenset({"perplexity"})
# Which tasks the benchmark scores average (imported by the report without pulling in torchmetrics).
GLUE_SCORE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte")  # + "wnli" if asked
CLUE_SCORE_TASKS = ("afqmc", "tnews", "iflytek", "ocnli", "cluewsc2020", "csl")  # CLUE 1.1 classification
# CLUE 1.0 reading comprehension present here (its third, ChID, is not available offline).
CLUE_RC_TASKS = ("cmrc2018", "c3")


@dataclass(frozen=True)
class TaskSpec:
    name: str  # "<benchmark>/<task>", e.g. "glue/sst2"
    benchmark: Benchmark
    language: Language
    text_fields: tuple[str, ...]
    labels: tuple[str, ...]  # label names, index = class id; empty for regression and LM
    metrics: tuple[str, ...]
    primary_metric: str
    # split name -> file (or folder) relative to `<data_root>/<benchmark>/`
    splits: Mapping[str, str] = field(hash=False)
    hub_path: str | None = None  # HF `datasets` path, e.g. "nyu-mll/glue"
    hub_config: str | None = None  # HF config name, e.g. "sst2"
    max_length: int = 128  # default sequence length in tokens (LM: block size)
    is_regression: bool = False
    # Label values as written in the official files, aligned with `labels` (default: = labels).
    label_codes: tuple[str, ...] = ()
    truncation: Literal["longest_first", "only_first", "only_second"] = "longest_first"
    release_url: str = ""  # where to get the official files
    kind: TaskKind = "classification"

    def __post_init__(self) -> None:
        bench, _, short = self.name.partition("/")
        if bench != self.benchmark or not short:
            raise ValueError(f"task name {self.name!r} must look like '{self.benchmark}/<task>'")
        if self.kind != "classification":
            if self.text_fields:  # their examples have their own fields (context, question, choices...)
                raise ValueError(f"{self.name}: a {self.kind} task has no text_fields")
        elif self.text_fields not in (TEXT_FIELDS[:1], TEXT_FIELDS):
            raise ValueError(f"{self.name}: text_fields must be ('text_a',) or ('text_a', 'text_b')")
        unknown = [m for m in self.metrics if m not in METRIC_NAMES]
        if unknown or not self.metrics:
            raise ValueError(f"{self.name}: unknown metrics {unknown}; valid: {METRIC_NAMES}")
        if self.primary_metric not in self.metrics:
            raise ValueError(f"{self.name}: primary_metric {self.primary_metric!r} not in {self.metrics}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"{self.name}: duplicate label names {self.labels}")
        if self.is_regression and self.labels:
            raise ValueError(f"{self.name}: a regression task has no label names")
        if not self.label_codes:
            object.__setattr__(self, "label_codes", self.labels)
        if len(self.label_codes) != len(self.labels) or len(set(self.label_codes)) != len(self.labels):
            raise ValueError(f"{self.name}: label_codes {self.label_codes} do not match labels")
        if not self.splits:
            raise ValueError(f"{self.name}: no splits")
        object.__setattr__(self, "splits", MappingProxyType(dict(self.splits)))

    def __reduce__(self) -> tuple[Any, ...]:
        # The read-only splits view cannot be pickled; rebuild from a plain dict instead.
        kwargs = {f.name: getattr(self, f.name) for f in fields(self)}
        kwargs["splits"] = dict(self.splits)
        return _spec_from_kwargs, (kwargs,)

    @property
    def short_name(self) -> str:
        return self.name.partition("/")[2]

    @property
    def is_pair(self) -> bool:
        return len(self.text_fields) == 2

    @property
    def is_lm(self) -> bool:
        return self.benchmark == "lm"

    @property
    def is_reading_comprehension(self) -> bool:
        return self.kind != "classification"

    @property
    def num_labels(self) -> int:
        """Output size of a classification head: 1 for regression, 0 for LM corpora."""
        return 1 if self.is_regression else len(self.labels)

    @property
    def val_splits(self) -> tuple[str, ...]:
        """Validation split names in a fixed order (MNLI has matched and mismatched)."""
        return tuple(s for s in self.splits if s.startswith("validation"))

    @property
    def greater_is_better(self) -> bool:
        return self.primary_metric not in LOWER_IS_BETTER

    def label_index(self, code: str) -> int | None:
        """Class id of a label as written in the official files (or of a label name)."""
        for names in (self.label_codes, self.labels):
            if code in names:
                return names.index(code)
        return None


def _spec_from_kwargs(kwargs: dict[str, Any]) -> TaskSpec:
    return TaskSpec(**kwargs)


TASKS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    if spec.name in TASKS:
        raise ValueError(f"task {spec.name!r} is already registered")
    TASKS[spec.name] = spec
    return spec


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Look a task up by full name ("glue/sst2") or, when unambiguous, short name ("sst2")."""
    if isinstance(name, TaskSpec):
        return name
    if name in TASKS:
        return TASKS[name]
    by_short = [spec for spec in TASKS.values() if spec.short_name == name]
    if len(by_short) == 1:
        return by_short[0]
    close = difflib.get_close_matches(name, list(TASKS) + [s.short_name for s in TASKS.values()], n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown task {name!r}.{hint} Valid tasks: {', '.join(sorted(TASKS))}")


def tasks_of(benchmark: Benchmark) -> tuple[TaskSpec, ...]:
    return tuple(spec for spec in TASKS.values() if spec.benchmark == benchmark)
