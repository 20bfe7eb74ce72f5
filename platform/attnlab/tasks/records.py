"""Helpers shared by the benchmark parsers: normalised examples and row-level errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from attnlab.tasks.spec import DataError, TaskSpec

Example = dict[str, Any]  # {"text_a": str, "text_b": str (pairs only), "label": int | float}


def make_example(spec: TaskSpec, texts: tuple[str, ...], label: int | float | None) -> Example:
    example: Example = dict(zip(spec.text_fields, texts, strict=True))
    if label is not None:
        example["label"] = label
    return example


def parse_label(spec: TaskSpec, raw: object, path: Path, line: int) -> int | float:
    """Map a label as written in the file to a class id (or a float score for regression)."""
    if spec.is_regression:
        try:
            score = float(str(raw))
        except ValueError:
            raise DataError(f"{path}, line {line}: score {raw!r} is not a number") from None
        if not math.isfinite(score):
            raise DataError(f"{path}, line {line}: score {raw!r} is not finite")
        return score
    index = spec.label_index(str(raw))
    if index is None:
        raise DataError(
            f"{path}, line {line}: unknown label {raw!r} for {spec.name}; "
            f"expected one of {list(spec.label_codes)}"
        )
    return index
