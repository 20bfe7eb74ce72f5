"""build_report writes every file; the HTML is self-contained; the export rebuilds the same report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from attnlab.record import Record
from attnlab.report import build_report, load_exported

SPEED = [
    {
        "variant": v,
        "seq_len": n,
        "fwd_bwd_ms": ms * n / 128,
        "peak_mem_mb": 10.0 * n / 128,
        "decode_ms_per_token": d,
    }
    for v, ms, d in (("dot", 2.0, 0.5), ("linear", 3.0, None))
    for n in (128, 256, 512)
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def external_references(html: str) -> list[str]:
    """Anything that would make a browser fetch something: src/href not to a data URI, CSS url()
    or @import, <link>, <script>, <iframe>, <object>, <embed>."""
    found = re.findall(r"""\b(?:src|href|srcset|action|data)\s*=\s*(?!["']?data:)[^"'\s>]*""", html, re.I)
    found += re.findall(r"url\(|@import|<link\b|<script\b|<iframe\b|<object\b|<embed\b", html, re.I)
    return found


def test_the_self_containment_check_catches_external_resources() -> None:
    assert external_references('<img src="https://example.org/a.png">')
    assert external_references('<link rel="stylesheet" href="x.css">')
    assert external_references("<style>body { background: url(http://x/y.png) }</style>")
    assert external_references('<script src="data:text/javascript,1"></script>')
    assert not external_references('<img alt="x" src="data:image/png;base64,AAAA">')


def test_build_report_writes_everything(
    tmp_path: Path, meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    paths = build_report(meta, records, tmp_path / "out", speed=SPEED)
    names = sorted(p.name for p in paths)
    expected = ["claims.csv", "cost.png", "leaderboard.csv", "leaderboard.md", "meta.json", "records.jsonl",
                "report.html"]
    assert names == sorted([*expected, "scores.png", "speed.png", "speed.json"])
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    for name in ("scores.png", "cost.png", "speed.png"):
        assert (tmp_path / "out" / name).read_bytes().startswith(PNG_MAGIC)

    html = (tmp_path / "out" / "report.html").read_text()
    assert external_references(html) == []
    assert html.count('src="data:image/png;base64,') == 3
    assert "https://arxiv.org/abs/2005.00743" in html  # the citation stays text, never a link
    assert "<h2>Paper vs here</h2>" in html and "inconclusive" in html and "nothing is hand-typed" in html
    assert "attnlab report results/synthesizer/records.jsonl" in html

    lines = (tmp_path / "out" / "records.jsonl").read_text().splitlines()
    # exported through the one Record writer: schema-1 input comes back normalised to the current schema
    assert [json.loads(line) for line in lines] == [Record.from_dict(r).to_dict() for r in records]
    csv_lines = (tmp_path / "out" / "leaderboard.csv").read_text().splitlines()
    assert csv_lines[0].startswith("rank,row,baseline,glue/sst2 mean,glue/sst2 std,glue/sst2 n,")
    assert csv_lines[2].startswith("1,synth,0,85.0,2.6457513110645")


def test_without_speed_there_is_no_speed_plot(
    tmp_path: Path, meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    names = {p.name for p in build_report(meta, records[:5], tmp_path)}  # a very incomplete grid
    assert "speed.png" not in names and "speed.json" not in names
    assert load_exported(tmp_path)[2] is None


def test_load_exported_rebuilds_an_identical_report(
    tmp_path: Path, meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    build_report(meta, records, tmp_path / "first", speed=SPEED)
    for source in (tmp_path / "first", tmp_path / "first" / "records.jsonl"):
        got_meta, got_records, got_speed = load_exported(source)
        normalised = [Record.from_dict(r).to_dict() for r in records]
        assert (got_meta, got_records, got_speed) == (meta, normalised, SPEED)
    build_report(got_meta, got_records, tmp_path / "second", speed=got_speed)
    for name in ("leaderboard.md", "leaderboard.csv", "report.html", "scores.png", "cost.png", "speed.png"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name


def test_load_exported_names_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"records\.jsonl"):
        load_exported(tmp_path)
    (tmp_path / "records.jsonl").write_text('{"row": "a", "task": "glue/sst2", "metrics": {}}\nnot json\n')
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        load_exported(tmp_path)
    (tmp_path / "meta.json").write_text("{}")
    with pytest.raises(ValueError, match="line 2"):
        load_exported(tmp_path)


def test_lm_only_grid_with_an_empty_row_still_builds(tmp_path: Path, meta: dict[str, Any]) -> None:
    # Perplexity ranks lower-first; a row without records and a one-seed row must not break the plots.
    records = [
        {
            "row": row,
            "task": "lm/wikitext2",
            "seed": seed,
            "trial": 0,
            "metrics": {"val/perplexity": ppl},
            "cost": {},
        }
        for row, seed, ppl in (("base", 0, 120.0), ("base", 1, 118.0), ("synth", 0, 110.0))
    ]
    meta.update(rows=["base", "synth", "never_ran"], tasks=["lm/wikitext2"], claims=[])
    build_report(meta, records, tmp_path)
    text = (tmp_path / "leaderboard.md").read_text()
    assert "lm/wikitext2 (ppl, lower is better)" in text
    assert "| 1 | synth | 110.00 (n=1) |" in text and "-10.00 (CI n/a, n=1)"  # seed 0 only: 110 − 120 in text
    assert "| — | never_ran | — |" in text
    assert (tmp_path / "scores.png").read_bytes().startswith(PNG_MAGIC)


def test_claims_csv_has_every_statistic_at_full_precision(
    tmp_path: Path, meta: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    import csv

    build_report(meta, records, tmp_path / "out")
    with (tmp_path / "out" / "claims.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # claim 0 overall + its two tasks, claim 1 (about SST-2 only) overall
    assert [(r["claim"], r["scope"]) for r in rows] == [("0", "overall"), ("0", "glue/sst2"), ("0", "clue/tnews"),
                                                        ("1", "overall")]
    sst2 = rows[3]  # per-seed differences 3, 2, 4: mean 3, sd 1, t interval 3 ∓ 4.302653 / √3
    assert float(sst2["diff_mean"]) == pytest.approx(3.0) and float(sst2["t_sd"]) == pytest.approx(1.0)
    assert float(sst2["t_lo"]) == pytest.approx(3 - 4.302653 / 3**0.5, abs=1e-6)
    assert sst2["verdict"] == "agrees" and sst2["p_source"] == "t" and sst2["boot_lo"] == ""
    assert float(sst2["mde_t"]) == pytest.approx(5.653489 / 3**0.5, abs=1e-4)


def test_exported_records_name_no_directory_of_this_machine(tmp_path: Path) -> None:
    """A pretrained row's config holds the absolute path of its checkpoint; the export makes every path under the
    project root relative (committed results must not carry /home/... of the machine that ran them)."""
    import json

    from attnlab.paths import project_root
    from attnlab.report.export import export_inputs

    root = project_root().resolve()
    ckpt = str(root / "results/albert_untie/pretrain/abc/model.ckpt")
    record = {"config": {"model": {"init_from": ckpt}, "task": {"tokenizer": str(root / "results/x")}},
              "curves": {"val/score": [[1, 2.0]]}, "name": "elsewhere: /opt/data stays"}
    export_inputs({"command": f"attnlab report {root}/results/x"}, [record], tmp_path)
    (line,) = (tmp_path / "records.jsonl").read_text().splitlines()
    out = json.loads(line)
    assert out["config"]["model"]["init_from"] == "results/albert_untie/pretrain/abc/model.ckpt"
    assert out["config"]["task"]["tokenizer"] == "results/x" and out["name"] == record["name"]
    assert str(root) not in (tmp_path / "meta.json").read_text()
