"""Claims' preconditions (`requires:`) checked on measured diagnostics: "untestable here" per task and overall,
Holm without untestable claims, the "What this preset can test" section, and old records that lack the metrics.

The grid is conftest's (base / synth × glue/sst2, clue/tnews × seeds 0-2): synth − base on SST-2 is 3, 2, 4
(agrees), on TNEWS 2, 3, −2 (inconclusive), overall (mean of both) 2.5, 2.5, 1 (inconclusive).
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import pytest

from attnlab.report import build_report, claim_rows, format_markdown

SOURCE = "Tay et al. 2021, arXiv 2005.00743v3, Table 2 (WMT'14 EnDe BLEU)"
REQ = {"measure": "attn/*/random/rel_change", "min": 0.05, "why": "the random weights must move"}


def with_diagnostics(records: list[dict[str, Any]], rel: dict[str, tuple[float, float]]) -> list[dict[str, Any]]:
    """synth's records get per-layer rel_change (layer 0, layer 1) by task; every record gets a data diagnostic."""
    out = copy.deepcopy(records)
    for r in out:
        r["metrics"]["data/train_tokens_per_example"] = 20.0 + r["seed"]  # mean over seeds 0-2: 21
        if r["row"] == "synth" and r["task"] in rel:
            r["metrics"]["attn/attn0/random/rel_change"], r["metrics"]["attn/attn1/random/rel_change"] = rel[r["task"]]
    return out


def claims_meta(meta: dict[str, Any], **first: Any) -> dict[str, Any]:
    meta["claims"][0].update(source=SOURCE, requires=[REQ], **first)
    meta["claims"][1].update(kind="ours")  # SST-2 only, no precondition
    return meta


def test_a_precondition_not_met_on_one_task_makes_only_that_task_untestable(
    meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    recs = with_diagnostics(records, {"glue/sst2": (0.1, 0.2), "clue/tnews": (0.01, 0.02)})
    first, second = claim_rows(claims_meta(meta), recs)
    sst2, tnews = first["per_task"]
    assert sst2["verdict"] == "agrees" and sst2["testable"] == "yes"  # met (0.15 ≥ 0.05): the usual verdict
    assert tnews["verdict"] == "untestable here" and tnews["testable"] == "no"  # 0.015 < 0.05
    assert tnews["holm_verdict"] is None and tnews["t"]["mean"] == pytest.approx(1.0)  # the numbers stay
    # met on SST-2, so the overall verdict stands (2.5, 2.5, 1 → inconclusive)
    assert first["verdict"] == "inconclusive" and first["testable"] == "partly"
    checks = {c["task"]: c for c in first["preconditions"]}
    assert checks["glue/sst2"]["value"] == pytest.approx(0.15) and checks["glue/sst2"]["n"] == 3
    assert checks["clue/tnews"]["status"] == "not met" and checks["glue/sst2"]["status"] == "met"
    assert second["preconditions"] == [] and second["verdict"] == "agrees"

    md = format_markdown(meta, recs)
    section = md.split("## What this preset can test", 1)[1].split("\n## ", 1)[0]
    assert "| synth vs base (better) | glue/sst2 | synth: attn/*/random/rel_change ≥ 0.05 — the random weights " \
           "must move | 0.15 (n=3) | met |" in section
    assert "| synth vs base (better) | clue/tnews |" in section and "| 0.015 (n=3) | not met |" in section
    assert ("Paper: R+V beats dot: 28.47 vs 27.67 BLEU — testable on: glue/sst2; untestable here on: clue/tnews: "
            "the random weights must move.") in section
    assert "Ours (hypothesis): better on SST-2 — no precondition stated." in section
    # diagnostics: layers averaged, then seeds; the row without the attention metric has none
    assert "| synth | attn/random/rel_change | 0.15 | 0.015 |" in section
    assert "| base | data/train_tokens_per_example | 21 | 21 |" in section
    assert "| base | attn/random/rel_change |" not in section
    assert md.index("### Per-task verdicts") < md.index("## What this preset can test")


def test_not_met_on_every_judged_task_makes_the_claim_untestable_and_leaves_holm(
    meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    recs = with_diagnostics(records, {"glue/sst2": (0.0, 0.01), "clue/tnews": (0.01, 0.02)})
    first, second = claim_rows(claims_meta(meta), recs)
    assert first["verdict"] == "untestable here" and first["testable"] == "no"
    assert first["holm_verdict"] is None and first["stats"]["holm_p"] is None
    assert first["stats"]["t"]["mean"] == pytest.approx(2.0)  # the interval is still computed
    assert [t["verdict"] for t in first["per_task"]] == ["untestable here"] * 2
    # the other claim is alone in the family: Holm leaves its p as it is
    assert second["stats"]["holm_p"] == pytest.approx(second["stats"]["p"])
    md = format_markdown(meta, recs)
    line = next(x for x in md.splitlines() if x.startswith("| Paper: R+V beats dot"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == SOURCE and cells[-2:] == ["untestable here", "—"]
    assert "Claims untestable here are left out of both families" in md


def test_a_claim_about_one_task_is_judged_on_that_task_only(
    meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    meta["claims"][1].update(requires=[{"measure": REQ["measure"], "row": "base", "max": 0.5, "why": "w"}])
    recs = with_diagnostics(records, {"glue/sst2": (0.1, 0.2)})
    for r in recs:  # base is measured on SST-2 only, and above max
        if r["row"] == "base" and r["task"] == "glue/sst2":
            r["metrics"]["attn/attn0/random/rel_change"] = 0.9
    second = claim_rows(meta, recs)[1]
    assert [c["task"] for c in second["preconditions"]] == ["glue/sst2"]  # not TNEWS
    assert second["verdict"] == "untestable here"
    assert "base: attn/*/random/rel_change ≤ 0.5" in format_markdown(meta, recs)


def test_old_records_and_old_claims_still_report(
    tmp_path: Path, meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    plain = claim_rows(meta, records)
    claims_meta(meta)  # preconditions on metrics these (old) records do not have
    rows = claim_rows(meta, records)
    assert rows[0]["preconditions"][0]["status"] == "not measured" and rows[0]["testable"] == "unchecked"
    assert [c["verdict"] for c in rows] == [c["verdict"] for c in plain]  # not measured changes nothing
    assert [t["verdict"] for t in rows[0]["per_task"]] == [t["verdict"] for t in plain[0]["per_task"]]
    build_report(meta, records, tmp_path / "out")
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| — | not measured |" in md and "not measured on: glue/sst2, clue/tnews (precondition unchecked)" in md
    assert "### Diagnostics" not in md  # no attn/ or data/ metrics at all
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<h2>What this preset can test</h2>" in html and "not measured" in html
    with (tmp_path / "out" / "claims.csv").open() as handle:
        lines = list(csv.DictReader(handle))
    assert [(r["kind"], r["testable"]) for r in lines] == [("paper", "unchecked")] * 3 + [("ours", "yes")]
    assert lines[0]["source"] == SOURCE and lines[3]["source"] == ""


def test_a_report_from_before_kinds_and_sources(
    tmp_path: Path, meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    build_report(meta, records, tmp_path)  # claims without kind, source or requires
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| Claim | Source |" in md and "| Paper: R+V beats dot: 28.47 vs 27.67 BLEU [synth vs base" in md
    assert "Paper: better on SST-2 — no precondition stated." in md


def test_diagnostics_in_html_and_the_untestable_class(
    tmp_path: Path, meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    recs = with_diagnostics(records, {"glue/sst2": (0.0, 0.01), "clue/tnews": (0.01, 0.02)})
    build_report(claims_meta(meta), recs, tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Diagnostics</h2>" in html and "<td>attn/random/rel_change</td>" in html
    assert '<td class="untestable here">untestable here</td>' in html
    with (tmp_path / "claims.csv").open() as handle:
        first = next(csv.DictReader(handle))
    assert (first["testable"], first["verdict"], first["holm_verdict"]) == ("no", "untestable here", "")


def test_a_claim_on_an_early_point_of_the_learning_curve(meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """`metric: score@N` judges a claim on the validation score at the first validation at or after step N (the
    record's learning curve): synth − base = +5 at step 50 on every seed, while the final scores differ less."""
    recs = copy.deepcopy(records)
    for r in recs:
        if r["task"] == "glue/sst2":
            early = 60.0 + r["seed"] + (5.0 if r["row"] == "synth" else 0.0)
            r["curves"] = {"val/score": [[25, 1.0], [50, early], [100, 90.0]]}
    meta["claims"] = [{"kind": "ours", "row": "synth", "vs": "base", "expect": "better", "task": "glue/sst2",
                       "metric": "score@40", "text": "synth is ahead early"}]
    (claim,) = claim_rows(meta, recs)
    assert claim["stats"]["t"]["mean"] == pytest.approx(5.0) and claim["stats"]["t"]["n"] == 3
    assert claim["metric"] == "glue/sst2 score at step 40"
    meta["claims"][0]["metric"] = "score@500"  # after the last validation: no value, no verdict from nothing
    (claim,) = claim_rows(meta, recs)
    assert claim["verdict"] == "no data"
