"""A small hand-checkable results grid: rows base / synth × tasks glue/sst2, clue/tnews × seeds 0, 1, 2.

val/score per cell (seed 0, 1, 2):
    base  sst2 80 82 84   tnews 50 51 55
    synth sst2 83 84 88   tnews 52 54 53
"""

from __future__ import annotations

from typing import Any

import pytest

SCORES = {
    ("base", "glue/sst2"): (80.0, 82.0, 84.0),
    ("base", "clue/tnews"): (50.0, 51.0, 55.0),
    ("synth", "glue/sst2"): (83.0, 84.0, 88.0),
    ("synth", "clue/tnews"): (52.0, 54.0, 53.0),
}
PARAMS = {"base": 1_000_000, "synth": 1_200_000}


def make_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for (row, task), values in SCORES.items():
        for seed, score in enumerate(values):
            records.append(
                {
                    "row": row,
                    "task": task,
                    "seed": seed,
                    "trial": len(records),
                    "metrics": {"val/score": score, "val/accuracy": score / 100},
                    "cost": {
                        "params": PARAMS[row],
                        "train_tokens_per_s": 1000.0 * (seed + 1),  # mean over 3 seeds: 2000
                        "wall_time_s": 10.0,
                        # mean over 3 seeds: base 110, synth 160
                        "peak_mem_mib": 100.0 + 10 * seed + (50 if row == "synth" else 0),
                    },
                }
            )
    return records


def make_meta(**overrides: Any) -> dict[str, Any]:
    meta = {
        "name": "synthesizer",
        "title": "Synthesizer vs dot-product attention",
        "paper": "Tay et al. 2020, Synthesizer (https://arxiv.org/abs/2005.00743)",
        "preset": "smoke",
        "command": "attnlab reproduce synthesizer --preset smoke",
        "attnlab_version": "0.1.0",
        "git_commit": "abc1234",
        "date": "2025-01-02T03:04:05",
        "baseline": "base",
        "rows": ["base", "synth"],
        "tasks": ["glue/sst2", "clue/tnews"],
        "seeds": [0, 1, 2],
        "claims": [
            {"row": "synth", "vs": "base", "expect": "better", "text": "R+V beats dot: 28.47 vs 27.67 BLEU"},
            {
                "row": "synth",
                "vs": "base",
                "expect": "better",
                "text": "better on SST-2",
                "task": "glue/sst2",
            },
        ],
        "paper_numbers": {"synth": "28.47 BLEU (WMT EnDe)", "base": "27.67 BLEU (WMT EnDe)"},
        "notes": ["smoke preset: tiny models, a few hundred steps"],
        "regenerate": "attnlab report results/synthesizer/records.jsonl",
    }
    meta.update(overrides)
    return meta


@pytest.fixture
def records() -> list[dict[str, Any]]:
    return make_records()


@pytest.fixture
def meta() -> dict[str, Any]:
    return make_meta()
