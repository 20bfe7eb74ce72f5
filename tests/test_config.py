"""The strict config loader: every error names the file and the dotted key."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from attnlab.attention.base import Attention
from attnlab.attention.registry import ATTENTION
from attnlab.config import (
    ConfigError,
    RunConfig,
    build_run_config,
    config_hash,
    load_run_config,
    to_dict,
)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    return p


def test_defaults_roundtrip_and_hash(tmp_path: Path) -> None:
    cfg = load_run_config(write(tmp_path, "model: {attention: {kind: linear, feature_map: relu}}\n"))
    assert cfg.model.attention.kind == "linear"
    assert cfg.model.attention.options["feature_map"] == "relu"
    assert cfg.model.attention.options["eps"] == 1e-6  # default filled in
    again = build_run_config(to_dict(cfg))
    assert again == cfg and config_hash(again) == config_hash(cfg)
    assert config_hash(build_run_config({"train": {"seed": 1}})) != config_hash(RunConfig())


def test_unknown_key_did_you_mean_with_file_and_path(tmp_path: Path) -> None:
    p = write(tmp_path, "model:\n  n_head: 4\n")
    with pytest.raises(ConfigError) as e:
        load_run_config(p)
    msg = str(e.value)
    assert str(p) in msg and "model.n_head" in msg and "Did you mean 'n_heads'" in msg


def test_unknown_variant_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_run_config(write(tmp_path, "model: {attention: {kind: lineer}}\n"))
    msg = str(e.value)
    assert "model.attention.kind" in msg and "Did you mean 'linear'" in msg
    for name in ATTENTION:
        assert name in msg


def test_unknown_variant_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.attention\.feature_mapp.*feature_map"):
        load_run_config(write(tmp_path, "model: {attention: {kind: linear, feature_mapp: relu}}\n"))


def test_bad_option_value_and_types(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="feature_map must be one of"):
        load_run_config(write(tmp_path, "model: {attention: {kind: linear, feature_map: tanh}}\n"))
    with pytest.raises(ConfigError, match=r"model\.d_model: expected int"):
        load_run_config(write(tmp_path, "model: {d_model: big}\n"))
    with pytest.raises(ConfigError, match=r"model\.mask: unknown value 'casual'.*'causal'"):
        load_run_config(write(tmp_path, "model: {mask: casual}\n"))
    with pytest.raises(ConfigError, match=r"model\.n_heads: d_model=10 is not divisible"):
        load_run_config(write(tmp_path, "model: {d_model: 10, n_heads: 4}\n"))


def test_float_strings_accepted(tmp_path: Path) -> None:
    cfg = load_run_config(write(tmp_path, "train: {lr: 1e-3}\n"))  # PyYAML reads this as a string
    assert cfg.train.lr == pytest.approx(1e-3)


def test_set_overrides() -> None:
    cfg = build_run_config({}, ["model.attention.kind=talking_heads", "model.attention.h_k=6",
                                "train.max_steps=7"])
    assert cfg.model.attention.kind == "talking_heads" and cfg.model.attention.options["h_k"] == 6
    assert cfg.train.max_steps == 7
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        build_run_config({}, ["train.max_steps"])
    with pytest.raises(ConfigError, match=r"train\.max_stepz"):
        build_run_config({}, ["train.max_stepz=3"])


def test_unsupported_mask_combination_rejected_with_reason() -> None:
    class PaddingOnly(Attention):
        name: ClassVar[str] = "padding_only_test"
        supported_masks: ClassVar[frozenset[str]] = frozenset({"padding"})

    ATTENTION[PaddingOnly.name] = PaddingOnly
    try:
        build_run_config({"model": {"attention": {"kind": PaddingOnly.name}}})  # bidirectional: fine
        with pytest.raises(ConfigError, match="does not support the 'causal' mask"):
            build_run_config({"model": {"mask": "causal", "attention": {"kind": PaddingOnly.name}}})
    finally:
        del ATTENTION[PaddingOnly.name]


def test_synthesizer_needs_max_len() -> None:
    with pytest.raises(ConfigError, match="max_len"):
        build_run_config({"model": {"max_len": 0, "attention": {"kind": "synthesizer_random"}}})


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_run_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_run_config(write(tmp_path, "model: [unclosed\n"))
