"""Every LightningModule reports the attention variants' scalars (the NaN-guard count when
`nan_guard` is on; mixture weights) with its validation metrics, hence in the run's record."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import pytest

import attnlab.train
from attnlab.config import AttentionConfig, ModelConfig, TrainConfig
from attnlab.train.classify import ClassifierModule
from attnlab.train.common import AttnlabModule
from attnlab.train.lm import LanguageModelModule

KEY = "attn/attn0/nan_guard_events"


def cfg(nan_guard: bool) -> ModelConfig:
    return ModelConfig(vocab_size=30, max_len=16, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0,
                       attention=AttentionConfig("linear", {"nan_guard": nan_guard}))


def modules(nan_guard: bool) -> list[AttnlabModule]:
    c, t = cfg(nan_guard), TrainConfig()
    return [ClassifierModule(c, "glue/sst2", t, 10),
            *(LanguageModelModule(c, t, 10, objective=o) for o in ("mlm", "causal", "seq2seq"))]


def end_validation(module: AttnlabModule) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no trainer attached / metrics computed on no data
        module.on_validation_epoch_end()
    return module.last_val


@pytest.mark.parametrize("index", range(4))
def test_nan_guard_count_is_logged_by_every_module(index: int) -> None:
    module = modules(nan_guard=True)[index]
    attn = module.model.transformer.attention_modules()[0]  # type: ignore[union-attr, operator]
    attn.nan_guard_events += 5  # as if five outputs had been zeroed
    assert end_validation(module)[KEY] == 5.0


@pytest.mark.parametrize("index", range(4))
def test_no_count_when_the_guard_is_off(index: int) -> None:
    assert not any("nan_guard" in k for k in end_validation(modules(nan_guard=False)[index]))


def reports_attention_metrics(cls: type) -> bool:
    """True unless the class ends validation its own way without `attention_metrics()` or its parent's."""
    own = cls.__dict__.get("on_validation_epoch_end")
    if own is None:
        return True
    src = inspect.getsource(own)
    return "attention_metrics()" in src or "super().on_validation_epoch_end()" in src


def test_every_module_adds_the_attention_metrics() -> None:
    for info in pkgutil.walk_packages(attnlab.train.__path__, "attnlab.train."):
        importlib.import_module(info.name)
    missing = []
    stack = list(AttnlabModule.__subclasses__())
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if cls.__module__.startswith("attnlab.") and not reports_attention_metrics(cls):
            missing.append(cls.__qualname__)
    assert not missing, missing


class _ForgetsThem(LanguageModelModule):
    def on_validation_epoch_end(self) -> None:
        self.last_val = {"val/loss": 0.0}


def test_the_check_catches_a_module_that_forgets_them() -> None:
    assert not reports_attention_metrics(_ForgetsThem)
    assert reports_attention_metrics(ClassifierModule) and reports_attention_metrics(LanguageModelModule)
