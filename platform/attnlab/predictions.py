"""Compact per-example dev predictions of one run, stored in its `Record` (`predictions`), so that reports can
pair two rows example by example (a paired bootstrap over seeds and dev examples) and compute majority-class
and chance baselines from the dev labels.

Format (plain JSON, a few hundred bytes for SST-2's 872 dev examples):
    {"format": "classes/v1", "num_classes": K, "split_sizes": [n1, n2, ...],
     "labels": "<base64>", "predicted": "<base64>"}
`labels` and `predicted` hold one class id per example, in dev order, the validation splits concatenated
(MNLI: matched then mismatched), each id in ceil(log2 K) bits, packed big-endian by `numpy.packbits`.
This module imports nothing from attnlab, so every layer may use it.
"""

from __future__ import annotations

import base64
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMAT = "classes/v1"


def bits_for(num_classes: int) -> int:
    return max(1, math.ceil(math.log2(max(2, num_classes))))


def pack(values: Sequence[int] | np.ndarray, bits: int) -> str:
    """Class ids (each < 2**bits) → base64 of their `bits`-bit big-endian codes, concatenated."""
    ids = np.asarray(values, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= 2**bits):
        raise ValueError(f"class ids must lie in [0, {2**bits}); got [{ids.min()}, {ids.max()}]")
    shifts = np.arange(bits - 1, -1, -1)  # most significant bit first
    planes = ((ids[:, None] >> shifts) & 1).astype(np.uint8)  # (N, bits)
    return base64.b64encode(np.packbits(planes.reshape(-1)).tobytes()).decode("ascii")


def unpack(text: str, bits: int, n: int) -> np.ndarray:
    """Inverse of `pack`: (n,) int64 class ids."""
    raw = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    planes = np.unpackbits(raw)[: n * bits].reshape(n, bits).astype(np.int64)  # (N, bits)
    return planes @ (1 << np.arange(bits - 1, -1, -1))


def encode(labels: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray, num_classes: int,
           split_sizes: Sequence[int] | None = None) -> dict[str, Any]:
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {predicted.shape} must be equal 1-D shapes")
    sizes = [int(s) for s in (split_sizes if split_sizes is not None else [len(labels)])]
    if sum(sizes) != len(labels):
        raise ValueError(f"split sizes {sizes} do not add up to {len(labels)} examples")
    bits = bits_for(num_classes)
    return {"format": FORMAT, "num_classes": int(num_classes), "split_sizes": sizes,
            "labels": pack(labels, bits), "predicted": pack(predicted, bits)}


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray  # (N,) class ids, splits concatenated
    predicted: np.ndarray  # (N,)
    num_classes: int
    split_sizes: tuple[int, ...]

    @property
    def correct(self) -> np.ndarray:
        return (self.labels == self.predicted).astype(np.int8)

    def splits(self) -> list[slice]:
        bounds = np.cumsum((0, *self.split_sizes))
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def decode(data: Mapping[str, Any] | None) -> Predictions | None:
    """A record's `predictions` → Predictions; None when absent or in a format this version does not know."""
    if not data or data.get("format") != FORMAT:
        return None
    k, sizes = int(data["num_classes"]), tuple(int(s) for s in data["split_sizes"])
    n, bits = sum(sizes), bits_for(int(data["num_classes"]))
    return Predictions(unpack(data["labels"], bits, n), unpack(data["predicted"], bits, n), k, sizes)
