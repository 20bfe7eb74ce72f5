"""Talking-heads options use the paper's head counts (Shazeer et al. 2020): h_k query/key heads,
h = model.n_heads logit/weight heads, h_v value heads. The earlier names `logit_heads` (= h_k) and
`weight_heads` (= h_v) still load, to the same model."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from attnlab.attention.base import options_from_dict
from attnlab.attention.masks import AttentionMask
from attnlab.attention.talking_heads import TalkingHeadsAttention
from attnlab.cli import main
from attnlab.config import ConfigError, build_run_config, to_dict
from attnlab.model import Transformer


def model_from(attention: dict[str, object]) -> Transformer:
    cfg = build_run_config({"model": {"vocab_size": 30, "max_len": 16, "d_model": 16, "n_heads": 4,
                                      "n_layers": 1, "d_ff": 32, "attention": attention},
                            "task": {"max_length": 16}}).model
    torch.manual_seed(0)
    return Transformer(cfg).double().eval()


def test_old_and_paper_spellings_load_the_same_model() -> None:
    old = model_from({"kind": "talking_heads", "logit_heads": 6, "weight_heads": 2})
    new = model_from({"kind": "talking_heads", "h_k": 6, "h_v": 2})
    assert old.cfg == new.cfg and old.cfg.attention.options == {"h_k": 6, "h_v": 2}
    assert to_dict(old.cfg.attention) == {"kind": "talking_heads", "h_k": 6, "h_v": 2}  # saved as paper names
    attn = old.attn_pool[0].fn
    assert isinstance(attn, TalkingHeadsAttention)
    assert (attn.h_k, attn.n_heads, attn.h_v) == (6, 4, 2)
    assert attn.pre_mix.shape == (6, 4) and attn.post_mix.shape == (4, 2)  # P_l: h_k × h, P_w: h × h_v
    sd_old, sd_new = old.state_dict(), new.state_dict()
    assert sd_old.keys() == sd_new.keys()
    for k in sd_old:
        assert_close(sd_old[k], sd_new[k])
    ids = torch.randint(0, 30, (2, 7), generator=torch.Generator().manual_seed(1))
    assert_close(old(ids), new(ids))


def test_options_from_dict_accepts_the_aliases_too() -> None:
    assert options_from_dict(TalkingHeadsAttention, {"logit_heads": 3}) == options_from_dict(
        TalkingHeadsAttention, {"h_k": 3})


def test_old_and_new_name_together_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"logit_heads.*h_k"):
        model_from({"kind": "talking_heads", "logit_heads": 6, "h_k": 6})


def test_list_shows_the_paper_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "attention"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("talking_heads "))
    assert "h_k=0" in line and "h_v=0" in line and "logit_heads" not in line and "weight_heads" not in line


def test_fewer_key_heads_still_runs() -> None:
    m = model_from({"kind": "talking_heads", "h_k": 2, "h_v": 8}).attn_pool[0].fn
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    assert m(x, AttentionMask("causal")).shape == (2, 7, 16)
