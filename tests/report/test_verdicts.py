"""Per-task and overall verdicts with power and Holm, on small grids worked by hand."""

from __future__ import annotations

from typing import Any

import pytest

from attnlab.report.leaderboard import claim_rows

# per-seed values: row "a" vs "b" on SST-2 (score) and WikiText-2 (perplexity, lower is better)
VALUES = {("a", "glue/sst2"): (81.0, 82.0, 80.0), ("b", "glue/sst2"): (80.0, 80.0, 80.0),
          ("a", "lm/wikitext2"): (100.0, 101.0, 99.0), ("b", "lm/wikitext2"): (110.0, 110.0, 110.0)}


def records() -> list[dict[str, Any]]:
    out = []
    for (row, task), values in VALUES.items():
        key = "val/perplexity" if task.startswith("lm/") else "val/score"
        out += [{"row": row, "task": task, "seed": s, "metrics": {key: v}} for s, v in enumerate(values)]
    return out


def meta(**claim: Any) -> dict[str, Any]:
    return {"rows": ["b", "a"], "tasks": ["glue/sst2", "lm/wikitext2"], "seeds": [0, 1, 2], "baseline": "b",
            "claims": [{"row": "a", "vs": "b", "expect": "better", "text": "a beats b", **claim}]}


def test_every_claim_gets_a_verdict_per_task_including_perplexity() -> None:
    (claim,) = claim_rows(meta(), records())
    sst2, lm = claim["per_task"]
    assert (sst2["scope"], lm["scope"]) == ("glue/sst2", "lm/wikitext2")
    # SST-2 differences 1, 2, 0: mean 1, sd 1 → CI 1 ∓ 2.484 contains 0
    assert sst2["t"]["mean"] == pytest.approx(1.0) and sst2["verdict"] == "inconclusive"
    # perplexity differences −10, −9, −11 (row − vs, shown as measured): lower is better → agrees
    assert lm["t"]["mean"] == pytest.approx(-10.0) and not lm["higher_is_better"] and lm["verdict"] == "agrees"
    assert claim["stats"]["scope"] == "overall" and claim["stats"]["metric"].startswith("overall score")


def test_underpowered_when_the_papers_effect_is_below_the_mde() -> None:
    # SST-2 overall: se = 1/√3, MDE = 5.6535/√3 = 3.264 points at 3 seeds
    small = claim_rows(meta(effect=1.2), records())[0]
    assert small["verdict"] == "underpowered" and small["stats"]["mde_t"] == pytest.approx(3.2640, abs=1e-3)
    large = claim_rows(meta(effect=5.0), records())[0]
    assert large["verdict"] == "inconclusive"  # the runs could have seen a 5-point effect: a real null result
    silent = claim_rows(meta(), records())[0]
    assert silent["verdict"] == "inconclusive" and silent["effect"] is None
    # the paper's effect in points carries to score tasks, not to perplexity
    assert [t["effect"] for t in small["per_task"]] == [1.2, None]


def test_holm_adjusts_across_the_tables_claims() -> None:
    m = meta(task="lm/wikitext2")
    m["claims"].append({"row": "a", "vs": "b", "expect": "better", "text": "ppl", "task": "lm/wikitext2"})
    first, second = claim_rows(m, records())
    p = first["stats"]["p"]  # t = −10 / (1/√3) = −17.32, 2 df → p = 0.003316
    assert p == pytest.approx(0.003316, abs=2e-5)
    assert first["stats"]["holm_p"] == pytest.approx(2 * p) and first["holm_verdict"] == "agrees"
    # two equal p-values: 2p for the first in order, then max(2p, 1 · p) = 2p for the second
    assert second["stats"]["holm_p"] == pytest.approx(2 * p)
