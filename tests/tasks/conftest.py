"""Fixtures for the tasks tests: the real benchmark data root, and no network for `datasets`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def find_data_root() -> Path:
    env = os.environ.get("ATTNLAB_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = find_data_root()
    if not (root / "glue").is_dir() or not (root / "clue").is_dir():
        pytest.skip(
            f"benchmark data not found at {root}: set ATTNLAB_DATA to the folder holding glue/, clue/, lm/"
        )
    return root


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Local loading sets these itself; going through monkeypatch restores them after each test.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def mnli_root(tmp_path: Path) -> Path:
    """A tiny data root with MNLI files in the official format (the real ones are not in the repo)."""
    root = tmp_path / "mnli-data"
    train_cols = ["index", "promptID", "pairID", "genre", "s1_bin", "s2_bin", "s1_parse", "s2_parse"]
    header = [*train_cols, "sentence1", "sentence2"]
    pairs = [
        ("A man sleeps.", "A person rests.", "entailment"),
        ("A cat runs.", "A dog flies.", "contradiction"),
        ("It is sunny.", "People are outside.", "neutral"),
    ]
    (root / "glue" / "MNLI").mkdir(parents=True)
    for name, labels in (
        ("train", ["label1"]),
        ("dev_matched", ["label1", "label2"]),
        ("dev_mismatched", []),
    ):
        lines = ["\t".join([*header, *labels, "gold_label"])]
        lines += [
            "\t".join(["0"] * len(train_cols) + [a, b] + [g] * len(labels) + [g]) for a, b, g in pairs * 3
        ]
        (root / "glue" / "MNLI" / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
