"""The command line end to end (in-process: `main(argv)`)."""

from __future__ import annotations

import pytest

from attnlab.attention import ATTENTION
from attnlab.cli import main


def test_list_shows_every_variant_with_options_and_masks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "attention"]) == 0
    out = capsys.readouterr().out
    for name, cls in ATTENTION.items():
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert ",".join(sorted(cls.supported_masks)) in line
    assert "feature_map='elu'" in out and "h_k=0, h_v=0" in out and "trainable=True" in out
    assert "logit_heads" not in out  # the paper's names (h_k, h, h_v), not the old aliases


def test_smoke_trains_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smoke", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    for name in ATTENTION:
        assert any(ln.startswith(name + " ") for ln in out.splitlines()), name
