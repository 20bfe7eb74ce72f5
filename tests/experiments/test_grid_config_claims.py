"""Claims in ablation files are typed (paper / ours), sourced (a version and a location) and may state
preconditions (`requires:`); every bad claim is one ConfigError naming the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from attnlab.config import ConfigError
from attnlab.experiments.grid_config import check_source, load_ablation

REPO = Path(__file__).resolve().parents[2]
SOURCE = "Tay et al. 2021, arXiv 2005.00743v3, Table 2 (WMT'14 EnDe BLEU)"
REQ = {"measure": "attn/*/random/rel_change", "min": 0.05, "why": "the random weights must move"}


def write(tmp_path: Path, **claim: Any) -> Path:
    base = {"row": "random", "vs": "dot", "expect": "better", "text": "R beats dot", "source": SOURCE}
    doc = {"name": "claims", "base": str(REPO / "sweeps/base/sst2.yaml"), "rows": {"dot": {}, "random": {}},
           "tasks": ["glue/sst2"], "seeds": [0], "claims": [{k: v for k, v in {**base, **claim}.items()
                                                             if v is not None}]}
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def error(tmp_path: Path, **claim: Any) -> str:
    path = write(tmp_path, **claim)
    with pytest.raises(ConfigError) as info:
        load_ablation(path, validate=False)
    text = str(info.value)
    assert text.startswith(str(path)), text  # the file is named
    return text


def test_a_sourced_paper_claim_with_preconditions_loads_and_keeps_its_fields(tmp_path: Path) -> None:
    req2 = {"measure": "data/len_over_key_size", "row": "dot", "max": 4, "why": "short sequences"}
    abl = load_ablation(write(tmp_path, requires=[REQ, req2]), validate=False)
    (claim,) = abl.claims
    assert claim["source"] == SOURCE and claim["requires"] == [REQ, req2]  # what meta.json carries


@pytest.mark.parametrize("source", [
    SOURCE,
    "Shazeer et al. 2020, arXiv:2003.02436v1, §4.2",
    "https://arxiv.org/abs/2005.00743v3, Fig. 3",
    "Su 2021, kexue.fm/archives/8610, results table",
    "https://kexue.fm/archives/7325 (section 3)",
])
def test_valid_sources(source: str) -> None:
    assert check_source(source) is None


def test_our_own_hypothesis_needs_no_source(tmp_path: Path) -> None:
    abl = load_ablation(write(tmp_path, kind="ours", source=None), validate=False)
    assert abl.claims[0]["kind"] == "ours" and "source" not in abl.claims[0]
    # …and may give one in any words
    assert load_ablation(write(tmp_path, kind="ours", source="our notes"), validate=False).claims


def test_unknown_kind(tmp_path: Path) -> None:
    text = error(tmp_path, kind="theirs")
    assert "claims[0].kind" in text and "'theirs'" in text and "paper, ours" in text


@pytest.mark.parametrize(("source", "expect"), [
    (None, "missing"),
    ("Tay et al. 2020, arXiv 2005.00743, Table 2", "no version"),  # arXiv id without v3
    ("https://arxiv.org/abs/2005.00743 Table 2", "no version"),  # … also inside a link
    ("Tay et al. 2020, Table 2", "no version"),
    ("arXiv 2005.00743v3", "no location"),
    ("arXiv 2005.00743v3, results", "no location"),  # the plain words count only for a web page
    ("https://example.org/results-table", "no location"),  # a word inside the URL is not a location
    (123, "expected text"),
])
def test_a_paper_claim_must_name_a_version_and_a_location(tmp_path: Path, source: Any, expect: str) -> None:
    text = error(tmp_path, source=source)
    assert "claims[0].source" in text and expect in text
    assert "2005.00743v3, Table 2" in text  # the example of a good source


@pytest.mark.parametrize(("requires", "key", "expect"), [
    ("attn/x", "claims[0].requires", "expected a list"),
    ([{**REQ, "mesure": "x"}], "claims[0].requires[0].mesure", "'measure'"),
    ([{k: v for k, v in REQ.items() if k != "why"}], "claims[0].requires[0].why", "missing"),
    ([{**REQ, "why": ""}], "claims[0].requires[0].why", "missing"),
    ([{k: v for k, v in REQ.items() if k != "measure"}], "claims[0].requires[0].measure", "missing"),
    ([{**REQ, "row": "nope"}], "claims[0].requires[0].row", "'nope' is not a row"),
    ([{"measure": "m", "why": "w"}], "claims[0].requires[0].min", "min and/or max"),
    ([{**REQ, "min": "high"}], "claims[0].requires[0].min", "expected a number"),
    ([{**REQ, "max": True}], "claims[0].requires[0].max", "expected a number"),
    ([{**REQ, "max": 0.01}], "claims[0].requires[0].min", "above max"),
    ([REQ, None], "claims[0].requires[1]", "expected a mapping"),
])
def test_bad_preconditions(tmp_path: Path, requires: Any, key: str, expect: str) -> None:
    text = error(tmp_path, requires=requires)
    assert f"{key}:" in text and expect in text, text


def test_existing_claim_checks_still_hold(tmp_path: Path) -> None:
    assert "claims[0].row" in error(tmp_path, row="nope")
    assert "claims[0].expect" in error(tmp_path, expect="faster")
    assert "claims[0].effect" in error(tmp_path, effect="big")
    assert "claims[0].sorce" in error(tmp_path, sorce="x")  # strict keys, did-you-mean


@pytest.mark.parametrize("numbers", [{"row": 28.47}, {"row": "28.47", "baseline": "27.67"}, "28.47 vs 27.67"])
def test_claim_numbers_are_the_two_rows_figures_as_text(tmp_path: Path, numbers: Any) -> None:
    assert "claims[0].numbers" in error(tmp_path, numbers=numbers)


def test_a_claim_shows_its_own_numbers_never_another_tables(tmp_path: Path) -> None:
    """The claims table's paper columns come from the claim's `numbers:`; the file-level paper_numbers are a fallback
    for paper claims only (a figure from another table next to our own hypothesis is how wrong quotes happen)."""
    from attnlab.report.grid import Grid
    from attnlab.report.leaderboard import grid_claims

    claims = [{"row": "random", "vs": "dot", "expect": "better", "text": "a", "numbers": {"row": "R 28.47"}},
              {"row": "random", "vs": "dot", "expect": "better", "text": "b"},
              {"kind": "ours", "row": "random", "vs": "dot", "expect": "better", "text": "c"}]
    meta = {"baseline": "dot", "rows": ["dot", "random"], "tasks": ["glue/sst2"], "seeds": [0], "claims": claims,
            "paper_numbers": {"random": "LM1B 40.60 ppl", "dot": "LM1B 38.21 ppl"}}
    own, fallback, ours = grid_claims(Grid.build(meta, []), meta)
    assert (own["paper_row"], own["paper_vs"]) == ("R 28.47", None)
    assert (fallback["paper_row"], fallback["paper_vs"]) == ("LM1B 40.60 ppl", "LM1B 38.21 ppl")
    assert (ours["paper_row"], ours["paper_vs"]) == (None, None)
