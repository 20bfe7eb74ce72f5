"""Leaderboard arithmetic against numbers worked out by hand (see conftest.py for the grid).

Hand derivations (sample std: ddof = 1; t_{0.975,2} = 4.302653 from a t table):
  base  sst2  80 82 84: mean 82, deviations −2 0 2, SS 8, var 4, std 2
  base  tnews 50 51 55: mean 52, deviations −2 −1 3, SS 14, var 7, std √7 = 2.6457513
  synth sst2  83 84 88: mean 85, deviations −2 −1 3, std √7 = 2.6457513
  synth tnews 52 54 53: mean 53, deviations −1 1 0, SS 2, var 1, std 1
  GLUE score = sst2 alone, CLUE score = tnews alone (one task of each benchmark).
  overall per seed = (sst2 + tnews) / 2:
    base  65, 66.5, 69.5 → mean 67, deviations −2 −0.5 2.5, SS 10.5, var 5.25, std 2.2912878
    synth 67.5, 69, 70.5 → mean 69, deviations −1.5 0 1.5, SS 4.5, var 2.25, std 1.5
  synth − base overall per seed: 2.5, 2.5, 1.0 → mean 2, SS 0.25+0.25+1 = 1.5, var 0.75,
    sd 0.8660254, se = sd/√3 = 0.5, half-width 4.302653 × 0.5 = 2.1513265 → CI [−0.1513265, 4.1513265]
  synth − base on sst2 per seed: 3, 2, 4 → mean 3, sd 1, se 1/√3 = 0.5773503,
    half-width 4.302653 × 0.5773503 = 2.4841377 → CI [0.5158623, 5.4841377]
  ranks: synth (69) 1, base (67) 2.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from attnlab.report import (
    claim_rows,
    format_markdown,
    leaderboard_rows,
    mean_std,
    paired_diff,
    pareto_front,
    primary_metric,
    rank,
    t_interval,
    task_metric,
    verdict,
)

T_975_2 = 4.302653  # Student t quantile, 0.975, 2 degrees of freedom (t table)


def by_row(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["row"]: r for r in rows}


def test_t_quantile_and_interval_match_hand_values() -> None:
    mean, lo, hi, n = t_interval([2.5, 2.5, 1.0])
    assert n == 3 and mean == pytest.approx(2.0)
    assert lo == pytest.approx(2.0 - T_975_2 * 0.5, abs=1e-6)
    assert hi == pytest.approx(2.0 + T_975_2 * 0.5, abs=1e-6)
    assert t_interval([1.5]) == (1.5, None, None, 1)
    assert t_interval([]) == (None, None, None, 0)
    assert mean_std([80.0, 82.0, 84.0]) == (pytest.approx(82.0), pytest.approx(2.0), 3)


def test_per_task_benchmark_and_overall_scores(meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    rows = leaderboard_rows(meta, records)
    assert [r["row"] for r in rows] == ["base", "synth"]  # meta order
    base, synth = by_row(rows)["base"], by_row(rows)["synth"]
    assert base["tasks"]["glue/sst2"] == {
        "mean": pytest.approx(82.0),
        "std": pytest.approx(2.0),
        "n": 3,
        "lower_is_better": False,
    }
    assert base["tasks"]["clue/tnews"]["mean"] == pytest.approx(52.0)
    assert base["tasks"]["clue/tnews"]["std"] == pytest.approx(2.6457513, abs=1e-6)
    assert synth["tasks"]["glue/sst2"]["std"] == pytest.approx(2.6457513, abs=1e-6)
    assert synth["tasks"]["clue/tnews"]["mean"] == pytest.approx(53.0)
    assert synth["tasks"]["clue/tnews"]["std"] == pytest.approx(1.0)
    assert base["benchmarks"]["glue"]["mean"] == pytest.approx(82.0)
    assert base["benchmarks"]["glue"]["tasks"] == ["glue/sst2"]
    assert synth["benchmarks"]["clue"]["mean"] == pytest.approx(53.0)
    assert base["overall"]["mean"] == pytest.approx(67.0)
    assert base["overall"]["std"] == pytest.approx(2.2912878, abs=1e-6)
    assert synth["overall"] == {"mean": pytest.approx(69.0), "std": pytest.approx(1.5), "n": 3}
    assert (base["rank"], synth["rank"]) == (2, 1)
    assert base["diff"] is None
    assert synth["diff"]["mean"] == pytest.approx(2.0)
    assert synth["diff"]["lo"] == pytest.approx(-0.1513265, abs=1e-6)
    assert synth["diff"]["hi"] == pytest.approx(4.1513265, abs=1e-6)
    assert synth["diff"]["n"] == 3
    assert synth["params"] == 1_200_000 and synth["train_tokens_per_s"] == pytest.approx(2000.0)
    assert (base["peak_mem_mib"], synth["peak_mem_mib"]) == (pytest.approx(110.0), pytest.approx(160.0))


def test_paired_diff_with_a_task_metric(meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    mean, lo, hi, n = paired_diff(records, "synth", "base", task_metric("glue/sst2").fn)
    assert (mean, n) == (pytest.approx(3.0), 3)
    assert (lo, hi) == (pytest.approx(0.5158623, abs=1e-6), pytest.approx(5.4841377, abs=1e-6))
    overall = primary_metric(meta["tasks"]).fn
    assert paired_diff(records, "synth", "base", overall)[:3] == pytest.approx((2.0, -0.1513265, 4.1513265))


def test_claims_get_numbers_and_verdicts(meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    overall, sst2 = claim_rows(meta, records)
    assert overall["verdict"] == "inconclusive"  # CI [−0.15, 4.15] contains 0
    assert overall["paper_row"] == "28.47 BLEU (WMT EnDe)" and overall["paper_vs"] == "27.67 BLEU (WMT EnDe)"
    assert sst2["verdict"] == "agrees"  # CI [0.52, 5.48] excludes 0 on the expected side
    assert sst2["diff"]["lo"] == pytest.approx(0.5158623, abs=1e-6)
    meta["claims"][1]["expect"] = "worse"
    assert claim_rows(meta, records)[1]["verdict"] == "disagrees"
    meta["claims"][1]["expect"] = "similar"  # CI [0.52, 5.48] neither inside nor outside ±1 ...
    # ... and per-seed diffs 3, 2, 4 (sd 1, se 1/√3) give MDE 5.6535 / √3 = 3.264 > the ±1 band: underpowered
    similar = claim_rows(meta, records)[1]
    assert similar["verdict"] == "underpowered"
    assert similar["stats"]["mde_t"] == pytest.approx(5.653489 / 3**0.5, abs=1e-4)
    meta["claims"] = [{"row": "nope", "vs": "base", "expect": "better", "text": "a row never run"}]
    assert claim_rows(meta, records)[0]["verdict"] == "no data"


@pytest.mark.parametrize(
    ("lo", "hi", "expect", "higher", "expected"),
    [
        (0.5, 2.0, "better", True, "agrees"),
        (-2.0, -0.5, "better", True, "disagrees"),
        (-0.5, 2.0, "better", True, "inconclusive"),
        (0.0, 2.0, "better", True, "inconclusive"),  # touching 0 does not exclude it
        (-2.0, -0.5, "worse", True, "agrees"),
        (0.5, 2.0, "worse", True, "disagrees"),
        (-3.0, -1.0, "better", False, "agrees"),  # perplexity: lower is better
        (1.0, 3.0, "better", False, "disagrees"),
        (1.0, 3.0, "worse", False, "agrees"),
        (-0.8, 0.9, "similar", True, "agrees"),
        (-1.0, 1.0, "similar", True, "agrees"),  # the band [−1, +1] is closed
        (1.2, 3.0, "similar", True, "disagrees"),
        (-3.0, -1.5, "similar", True, "disagrees"),
        (0.5, 1.5, "similar", True, "inconclusive"),
        (-2.0, 2.0, "similar", True, "inconclusive"),
    ],
)
def test_verdict_rule(lo: float, hi: float, expect: Any, higher: bool, expected: str) -> None:
    assert verdict(lo, hi, expect, higher) == expected


def test_verdict_without_an_interval() -> None:
    assert verdict(None, None, "better", n=1) == "inconclusive"
    assert verdict(None, None, "similar", n=0) == "no data"
    with pytest.raises(ValueError, match="expect"):
        verdict(0.0, 1.0, "bigger")  # type: ignore[arg-type]


def test_missing_cell_gives_n_2_and_does_not_crash(
    meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    # Drop synth × tnews × seed 2. Hand values: synth tnews 52, 54 → mean 53, std √2 = 1.4142136;
    # synth overall over seeds 0, 1: 67.5, 69 → mean 68.25, std √1.125 = 1.0606602;
    # paired diffs 2.5, 2.5 → mean 2.5, sd 0 → CI [2.5, 2.5].
    kept = [r for r in records if (r["row"], r["task"], r["seed"]) != ("synth", "clue/tnews", 2)]
    synth = by_row(leaderboard_rows(meta, kept))["synth"]
    assert synth["tasks"]["clue/tnews"] == {
        "mean": pytest.approx(53.0),
        "std": pytest.approx(math.sqrt(2)),
        "n": 2,
        "lower_is_better": False,
    }
    assert synth["tasks"]["glue/sst2"]["n"] == 3
    assert synth["overall"] == {"mean": pytest.approx(68.25), "std": pytest.approx(1.0606602), "n": 2}
    assert synth["diff"] == {
        "mean": pytest.approx(2.5),
        "lo": pytest.approx(2.5),
        "hi": pytest.approx(2.5),
        "n": 2,
    }
    text = format_markdown(meta, kept)
    assert "53.00 ± 1.41 (n=2)" in text
    assert "1 missing cell(s)" in text and "synth × clue/tnews × seed 2" in text
    # Only seed 0: n = 1 everywhere, no std and no CI.
    first = [r for r in records if r["seed"] == 0]
    synth = by_row(leaderboard_rows(meta, first))["synth"]
    assert synth["diff"] == {"mean": pytest.approx(2.5), "lo": None, "hi": None, "n": 1}
    text = format_markdown(meta, first)
    assert "83.00 (n=1)" in text and "+2.50 (CI n/a, n=1)" in text
    assert "±0.00" not in text and "± 0.00" not in text


def test_empty_row_and_non_finite_values(meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    meta["rows"] = ["base", "synth", "never_ran"]
    broken = copy.deepcopy(records)
    broken[0]["metrics"]["val/score"] = float("nan")  # base × sst2 × seed 0 diverged
    rows = by_row(leaderboard_rows(meta, broken))
    assert rows["never_ran"]["rank"] is None and rows["never_ran"]["overall"]["n"] == 0
    assert rows["base"]["tasks"]["glue/sst2"]["n"] == 2
    text = format_markdown(meta, broken)
    assert "without a finite value" in text and "never_ran" in text


def test_markdown_states_scores_conventions_and_provenance(
    meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    text = format_markdown(meta, records)
    for expected in (
        "# Synthesizer vs dot-product attention",
        "- Produced by: `attnlab reproduce synthesizer --preset smoke`",
        "- Regenerate: `attnlab report results/synthesizer/records.jsonl`",
        "- Report built at commit: `abc1234`",
        "nothing is hand-typed",
        "| 2 | base (baseline) | 82.00 ± 2.00 | 52.00 ± 2.65 | 82.00 ± 2.00 | 52.00 ± 2.65 | 67.00 ± 2.29 | 3 |",
        "| 1 | synth | 85.00 ± 2.65 | 53.00 ± 1.00 |",
        "+2.00 [-0.15, +4.15]",
        "WNLI is excluded",
        "partial: 1 of the 8 GLUE-score tasks",
        "partial: 1 of the 6 CLUE 1.1 classification tasks",
        "| glue/sst2 score | +3.00 [+0.52, +5.48] | n/a | t 3.26 | not stated | agrees | inconclusive (p_adj 0.0702) |",
        "| synth vs base (better) | clue/tnews score | +1.00 [-5.57, +7.57] | n/a | t 8.64 | not stated |",
        "synth: 28.47 BLEU (WMT EnDe)",
    ):
        assert expected in text, expected


def test_wnli_and_lm_tasks_stay_out_of_the_scores(meta: dict[str, Any]) -> None:
    # Per seed s: sst2 = 80 + s, wnli = 40 (excluded), wikitext2 perplexity = 100 − s (not a score).
    records = []
    for row in ("base", "synth"):
        for seed in range(3):
            bonus = 2 if row == "synth" else 0
            for task, metrics in (
                ("glue/sst2", {"val/score": 80.0 + seed + bonus}),
                ("glue/wnli", {"val/score": 40.0}),
                ("lm/wikitext2", {"val/perplexity": 100.0 - seed - bonus}),
            ):
                records.append(
                    {"row": row, "task": task, "seed": seed, "trial": 0, "metrics": metrics, "cost": {}}
                )
    meta.update(tasks=["glue/sst2", "glue/wnli", "lm/wikitext2"], claims=[])
    rows = by_row(leaderboard_rows(meta, records))
    assert rows["base"]["benchmarks"]["glue"]["mean"] == pytest.approx(81.0)  # (80+81+82)/3, WNLI left out
    assert rows["base"]["overall"]["mean"] == pytest.approx(81.0)
    assert rows["base"]["tasks"]["lm/wikitext2"] == {
        "mean": pytest.approx(99.0),
        "std": pytest.approx(1.0),
        "n": 3,
        "lower_is_better": True,
    }
    diff = rows["synth"]["diff"]
    assert (diff["mean"], diff["lo"], diff["hi"]) == pytest.approx((2.0, 2.0, 2.0))  # +2 on every seed
    assert "lm/wikitext2 (ppl, lower is better)" in format_markdown(meta, records)
    # An LM-only grid ranks by perplexity, lower first; a "better" claim needs a negative difference.
    lm_only = [r for r in records if r["task"] == "lm/wikitext2"]
    claim = {"row": "synth", "vs": "base", "expect": "better", "text": "lower perplexity"}
    meta.update(tasks=["lm/wikitext2"], claims=[claim])
    rows = by_row(leaderboard_rows(meta, lm_only))
    assert (rows["synth"]["rank"], rows["base"]["rank"]) == (1, 2)
    assert rows["synth"]["diff"]["mean"] == pytest.approx(-2.0)
    assert claim_rows(meta, lm_only)[0]["verdict"] == "agrees"


def test_rank_and_pareto_front() -> None:
    assert rank([67.0, 69.0, None, 69.0]) == [3, 1, None, 1]
    assert rank([10.0, 5.0], higher_is_better=False) == [2, 1]
    # (params, score): B dominates A (fewer params, higher score); C is bigger but better; D dominated by C.
    xs, ys = [2.0, 1.0, 3.0, 4.0], [60.0, 65.0, 70.0, 69.0]
    assert pareto_front(xs, ys, x_lower_is_better=True) == [1, 2]
    # tokens/s (more is better): 4.0 @ 69 and 3.0 @ 70 are both on the front, 1.0 and 2.0 are not.
    assert pareto_front(xs, ys, x_lower_is_better=False) == [2, 3]
