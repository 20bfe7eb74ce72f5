"""The report's CLUE reading-comprehension and overall averages, next to the classification average.

Grid (one row, seeds 0 and 1), val/score per cell:
  clue/tnews 50 60, clue/cmrc2018 20 30, clue/c3 40 44, clue/chid_fewclue 90 90 (never counted)
  CLUE score (classification) = tnews: 50, 60 → mean 55
  CLUE RC score = (cmrc + c3) / 2: 30, 37 → mean 33.5
  CLUE overall = (tnews + cmrc + c3) / 3: 110/3, 134/3 → mean 122/3 = 40.666…
"""

from __future__ import annotations

from typing import Any

import pytest

from attnlab.report import format_markdown, leaderboard_rows

SCORES = {"clue/tnews": (50.0, 60.0), "clue/cmrc2018": (20.0, 30.0), "clue/c3": (40.0, 44.0),
          "clue/chid_fewclue": (90.0, 90.0)}


def records() -> list[dict[str, Any]]:
    return [{"row": "dot", "task": task, "seed": seed, "metrics": {"val/score": value},
             "cost": {"params": 1, "train_tokens_per_s": 1.0, "wall_time_s": 1.0, "peak_mem_mb": 1.0}}
            for task, values in SCORES.items() for seed, value in enumerate(values)]


def test_reading_comprehension_and_overall_clue_averages() -> None:
    meta = {"name": "mrc", "rows": ["dot"], "tasks": list(SCORES), "seeds": [0, 1], "baseline": "dot"}
    (row,) = leaderboard_rows(meta, records())
    bench = row["benchmarks"]
    assert bench["clue"]["mean"] == pytest.approx(55.0) and bench["clue"]["tasks"] == ["clue/tnews"]
    assert bench["clue_rc"]["mean"] == pytest.approx(33.5)
    assert bench["clue_rc"]["tasks"] == ["clue/cmrc2018", "clue/c3"]
    assert bench["clue_all"]["mean"] == pytest.approx(122 / 3)
    assert "clue/chid_fewclue" not in bench["clue_all"]["tasks"]


def test_no_reading_task_no_reading_columns() -> None:
    meta = {"name": "cls", "rows": ["dot"], "tasks": ["clue/tnews"], "seeds": [0, 1], "baseline": "dot"}
    (row,) = leaderboard_rows(meta, [r for r in records() if r["task"] == "clue/tnews"])
    assert set(row["benchmarks"]) == {"clue"}


def test_markdown_states_the_convention() -> None:
    meta = {"name": "mrc", "title": "t", "rows": ["dot"], "tasks": list(SCORES), "seeds": [0, 1], "baseline": "dot"}
    text = format_markdown(meta, records())
    assert "CLUE RC score¹" in text and "CLUE overall¹" in text and "CLUE score¹" in text
    assert "CLUE 1.0 averages all its tasks" in text and "ChID is absent here" in text
