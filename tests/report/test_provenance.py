"""The report states where its numbers come from: the records' commits and tree state, the run settings and
the cells that ran differently (‡), throughput measured on shared cores (†), FLOPs per token, and the
command that produced the records beside the one that rebuilt the report."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from attnlab.report import format_markdown, leaderboard_rows
from attnlab.report.provenance import command_meta, commit_span, deviations, header_lines, notes

VERSIONS = {"python": "3.11.9", "torch": "2.13.0", "pytorch_lightning": "2.6.6"}


def with_settings(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(records)
    for i, r in enumerate(out):
        r.update(threads=1, deterministic=True, library_versions=dict(VERSIONS), git_commit="aaaa1111",
                 git_dirty=False, device="cpu", concurrent_workers=1, created=f"2026-01-01T00:00:{i:02d}",
                 vocabulary_hash="sst2vocab" if r["task"] == "glue/sst2" else "tnewsvocab")
        r["cost"].update(flops_per_token=6144.0 if r["row"] == "base" else 4640.0, peak_mem_baseline_mib=400.0)
    return out


def test_uniform_records_flag_nothing(meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    recs = with_settings(records)
    assert deviations(recs) == [] and notes(recs) == []
    lines = dict(header_lines(recs))
    assert lines["Records' commits"] == "aaaa1111 (12 records)"
    assert lines["Working tree"].startswith("clean")
    assert "1 thread(s), deterministic algorithms on" in lines["Run settings"] and "torch 2.13.0" in lines["Run settings"]
    text = format_markdown(meta, recs)
    assert "‡" not in text and "†" not in text
    assert "FLOPs/token (fwd)" in text and "6.14K" in text and "4.64K" in text


def test_deviating_cells_shared_throughput_and_dirty_trees_are_flagged(meta: dict[str, Any],
                                                                       records: list[dict[str, Any]]) -> None:
    recs = with_settings(records)
    odd = next(r for r in recs if r["row"] == "synth" and r["task"] == "clue/tnews" and r["seed"] == 2)
    odd.update(threads=4, git_commit="bbbb2222", git_dirty=True)
    for r in recs:
        if r["row"] == "base":
            r["concurrent_workers"] = 2
    found = deviations(recs)
    assert [(r["row"], r["task"], r["seed"]) for r, _ in found] == [("synth", "clue/tnews", 2)]
    assert set(found[0][1]) == {"threads", "commit"}
    assert commit_span(recs) == "aaaa1111 (11 records), bbbb2222 (1 record)"
    assert "modified" in dict(header_lines(recs))["Working tree"]
    rows = {r["row"]: r for r in leaderboard_rows(meta, recs)}
    assert rows["base"]["throughput_shared"] and not rows["synth"]["throughput_shared"]
    text = format_markdown(meta, recs)
    board = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| ") and " | " in line}
    assert "‡" in board["synth"] and "‡" not in board["base (baseline)"]  # the tnews cell of synth
    assert "†" in board["base (baseline)"] and "†" not in board["synth"]  # base's tokens/s
    assert "synth × clue/tnews × seed 2: threads 4, commit bbbb2222 (modified tree)" in text
    assert "shared the machine's cores" in text


def test_old_records_say_what_their_memory_means(meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    text = format_markdown(meta, records)  # no settings, no baseline: written before they were recorded
    assert "lifetime peak" in text
    assert "Records' commits" in text


def test_producing_command_survives_a_rebuild(meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    produced = ["attnlab reproduce synthesizer --preset cpu --workers 2"]
    assert command_meta(produced, produced[0]) == {"command": produced[0]}
    rebuilt = command_meta(produced, "attnlab report synthesizer --preset cpu")
    assert rebuilt == {"command": produced[0], "report_command": "attnlab report synthesizer --preset cpu"}
    meta_text = format_markdown({**meta, **rebuilt}, records)
    assert "- Produced by: `attnlab reproduce synthesizer --preset cpu --workers 2`" in meta_text
    assert "- Report rebuilt by: `attnlab report synthesizer --preset cpu`" in meta_text
    assert command_meta([], "attnlab report x")["command"].startswith("not recorded")


def test_a_different_vocabulary_is_flagged_within_a_task_only(meta: dict[str, Any],
                                                              records: list[dict[str, Any]]) -> None:
    recs = with_settings(records)  # sst2 and tnews train different tokenizers: that is no deviation
    assert deviations(recs) == []
    odd = next(r for r in recs if r["row"] == "base" and r["task"] == "glue/sst2" and r["seed"] == 1)
    odd["vocabulary_hash"] = "retrained"  # a fresh cache trained another vocabulary for this run
    assert [(r["row"], r["task"], r["seed"], d) for r, d in deviations(recs)] == [
        ("base", "glue/sst2", 1, {"vocabulary": "retrained"})]


def test_sweep_report_marks_shared_throughput_and_odd_trials(tmp_path: Path) -> None:
    from attnlab.experiments.results import TrialRow
    from attnlab.record import Record
    from attnlab.report.sweep import build_sweep_report

    rows = []
    for n in range(3):
        rec = {"name": f"t{n}", "task": "glue/sst2", "trial": n, "seed": 0, "metrics": {"val/accuracy": 0.7 + n / 100},
               "cost": {"params": 1000, "train_tokens_per_s": 500.0, "train_tokens": 10, "train_steps": 2,
                        "wall_time_s": 1.0, "peak_mem_mib": 5.0, "flops_per_token": 6144.0},
               "threads": 1 if n < 2 else 8, "deterministic": True, "library_versions": dict(VERSIONS),
               "git_commit": "aaaa1111", "git_dirty": False, "device": "cpu", "concurrent_workers": 2 if n == 0 else 1,
               "created": f"2026-01-01T00:00:0{n}"}
        rows.append(TrialRow(number=n, state="COMPLETE", params={}, values=[0.7 + n / 100],
                             records=[Record.from_dict(rec)], fail_reason=None, duration_s=1.0))
    meta = {"kind": "sweep", "name": "demo", "title": "Sweep: demo", "objectives": [{"metric": "val/accuracy",
            "direction": "maximize"}], "tasks": ["glue/sst2"], "command": "attnlab sweep demo.yaml",
            "report_command": "attnlab report demo.yaml", "n_trials": 3, "space": []}
    build_sweep_report(meta, rows, tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    board = {line.split(" | ")[1]: line for line in md.splitlines() if line.startswith("| ") and " | #" in line}
    assert "‡" in board["#2 ‡"] and "‡" not in board["#1"] and "‡" not in board["#0"]  # 8 threads vs 1
    assert "500 †" in board["#0"] and "†" not in board["#1"]
    assert "6,144" in board["#1"]  # FLOPs/token
    assert "- Produced by: `attnlab sweep demo.yaml`" in md and "- Report rebuilt by: `attnlab report demo.yaml`" in md
    assert "Records' commits: aaaa1111 (3 records)" in md
    assert "trial 2 × glue/sst2: threads 8" in md
