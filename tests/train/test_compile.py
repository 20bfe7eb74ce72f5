"""`train.compile: true`: a strict config field, and torch.compile applied to the model in place."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from attnlab.config import ConfigError, build_run_config
from attnlab.model import SequenceClassifier
from attnlab.model.transformer import Transformer
from attnlab.train.fit import compile_model


def test_compile_is_a_strict_train_field() -> None:
    assert build_run_config({}).train.compile is False
    assert build_run_config({"train": {"compile": True}}).train.compile is True
    assert build_run_config({}, ["train.compile=true"]).train.compile is True
    with pytest.raises(ConfigError, match=r"train\.compile"):
        build_run_config({"train": {"compile": "fast"}})


def _tiny() -> SequenceClassifier:
    torch.manual_seed(0)
    cfg = build_run_config({"model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "max_len": 16,
                                      "dropout": 0.0, "attention_dropout": 0.0}, "task": {"max_length": 16}}).model
    return SequenceClassifier(cfg, num_labels=2)


def test_compile_model_is_in_place_and_keeps_every_name(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Transformer] = []
    monkeypatch.setattr(Transformer, "compile", lambda self, *a, **k: calls.append(self))
    model = _tiny()
    keys = list(model.state_dict())
    assert compile_model(model) == 1 and calls == [model.transformer]
    assert list(model.state_dict()) == keys and isinstance(model.transformer, Transformer)


@pytest.mark.slow
def test_compiled_model_matches_eager() -> None:
    """The real compile (inductor; tens of seconds): same outputs and gradients as eager."""
    eager, compiled = _tiny(), _tiny()
    compile_model(compiled)
    ids = torch.randint(5, 100, (2, 12), generator=torch.Generator().manual_seed(1))
    outs = []
    for model in (eager, compiled):
        logits = model(ids)
        logits.sum().backward()
        outs.append((logits, [p.grad for p in model.parameters()]))
    assert_close(outs[1][0], outs[0][0], atol=1e-5, rtol=1e-4)
    for a, b in zip(outs[1][1], outs[0][1]):
        assert_close(a, b, atol=1e-5, rtol=1e-4)
