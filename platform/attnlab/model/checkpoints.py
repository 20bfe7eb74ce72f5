"""Pretrained checkpoints → attnlab models: HF BERT, RoBERTa, ALBERT and GPT-2 directories
(`config.json` + `model.safetensors` / `pytorch_model.bin`), and attnlab Lightning `.ckpt` files.

The name maps below are the only place that knows HF's layout. Loading is strict: after mapping,
every checkpoint tensor must land in a parameter and every parameter must be filled. The only
exceptions, each listed in the `LoadReport`:
- dropped: HF buffers that are not weights (`position_ids`, GPT-2's causal `attn.bias`) and known
  head tensors the requested model has no place for (NSP/SOP heads, a pooler under a bare encoder);
- fresh: the classifier head (pooler + classifier) when the checkpoint has none;
- neutral: parameters whose own init leaves the function unchanged (talking-heads identity mixers,
  Conditional LayerNorm's zero projections);
- with a swapped attention variant, what it cannot take by role (q/k/v/o): re-initialised, warned.
A variant only takes another family's attention weights when its class declares that family in
`exact_weights` (HF model types; attnlab attention kinds for attnlab checkpoints); any other swap
is refused unless the caller passes `inexact_attention=True`.
Anything else raises a ValueError that lists the unused and the missing names.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attnlab.attention.registry import ATTENTION, get_attention_class
from attnlab.model.config import AttentionConfig, ModelConfig
from attnlab.model.heads import CausalLM, MaskedLM, SequenceClassifier
from attnlab.model.hf_format import (
    CLASSIFIER_HEAD,
    ROLE_PATTERN,
    config_from_pretrained,
    hf_to_config,
    map_hf_state_dict,
    read_hf_config,
    read_state_dict,
)

__all__ = ["HEADS", "LoadReport", "assign", "config_from_pretrained", "init_from", "load_pretrained",
           "map_hf_state_dict", "read_state_dict", "transformer_of"]
from attnlab.model.transformer import Transformer

HEADS = ("encoder", "mlm", "lm", "classifier")


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)  # our parameters filled from the checkpoint
    dropped: list[str] = field(default_factory=list)  # checkpoint tensors deliberately not used
    fresh: list[str] = field(default_factory=list)  # our parameters left at their (allowed) init
    reinitialised: list[str] = field(default_factory=list)  # attention params a swapped variant could not take
    attention_unused: list[str] = field(default_factory=list)  # checkpoint tensors it had no role for
    notes: list[str] = field(default_factory=list)


# ---- strict assignment -------------------------------------------------------------------------
def _targets(model: nn.Module) -> dict[str, Tensor]:
    prefix = "transformer." if isinstance(model, Transformer) else ""
    return {prefix + k: v for k, v in model.state_dict(keep_vars=True).items()}


def _by_role(name: str, targets: dict[str, Tensor]) -> str | None:
    """Where a swapped attention variant keeps the q/k/v/o role that `name` holds (or None)."""
    m = ROLE_PATTERN.fullmatch(name)
    if m is None:
        return None
    pattern = re.compile(rf"(?:[a-z_]+\.)?{m[2]}\.{m[3]}")
    hits = [k for k in targets if k.startswith(m[1]) and pattern.fullmatch(k[len(m[1]):])]
    return hits[0] if len(hits) == 1 else None


def _neutral(name: str, targets: dict[str, Tensor]) -> bool:
    """A parameter whose construction init leaves the function equal to its parent's."""
    t = targets[name].detach()
    if name.endswith(("pre_mix", "post_mix")):  # talking-heads mixers: identity when square
        return t.shape[0] == t.shape[1] and torch.equal(t, torch.eye(t.shape[0], dtype=t.dtype))
    if ".to_gamma." in name or ".to_beta." in name:  # Conditional LayerNorm: zero projections
        return not bool(t.any())
    if name.endswith(".hidden.weight"):  # CLN hidden layer: feeds only the (zero) projections
        base = name[: -len("hidden.weight")]
        return all(not bool(targets[base + p].detach().any()) for p in ("to_gamma.weight", "to_beta.weight"))
    return False


def assign(model: nn.Module, mapped: dict[str, Tensor], *, fresh_ok: tuple[str, ...] = (),
           swapped: bool = False, strict_heads: bool = True, report: LoadReport | None = None) -> LoadReport:
    """Copy `mapped` (attnlab names, body under "transformer.") into `model`, strictly (module docstring).

    `swapped`: the checkpoint's attention kind differs from the model's → place q/k/v/o by role and
    let the variant keep its own init for the rest. `strict_heads=False`: parameters outside the
    transformer load when names and shapes match and otherwise stay fresh (for `init_from`).
    """
    report = report or LoadReport()
    targets = _targets(model)
    plan: dict[str, tuple[str, Tensor]] = {}  # target name → (source name, tensor)
    owner = {id(v): k for k, v in reversed(list(targets.items()))}  # tied tensors → their first name
    unused: list[str] = []
    mismatched: list[str] = []
    att_unused: list[str] = []
    for name, tensor in mapped.items():
        dest = name if name in targets else (_by_role(name, targets) if swapped else None)
        in_body = name.startswith("transformer.")
        if dest is None:
            layer = name.split(".fn.")[0] + ".fn."  # an attention layer the model has, but no slot in it
            in_attention = swapped and ".attn_pool." in name and any(k.startswith(layer) for k in targets)
            (att_unused if in_attention else unused if in_body else report.dropped).append(name)
            continue
        p = targets[dest]
        if p.shape != tensor.shape:
            if swapped and ROLE_PATTERN.fullmatch(name):  # the variant sizes this role differently
                att_unused.append(f"{name} {tuple(tensor.shape)}")
            elif not strict_heads and not in_body:  # e.g. another label count
                report.dropped.append(f"{name} {tuple(tensor.shape)}")
            else:
                mismatched.append(f"{name}: checkpoint {tuple(tensor.shape)} vs model {tuple(p.shape)}")
            continue
        key = owner[id(p)]
        if key in plan and not torch.equal(plan[key][1].to(p.dtype), tensor.to(p.dtype)):
            raise ValueError(f"{plan[key][0]} and {name} differ, but this model ties them (untied checkpoint)")
        plan[key] = (name, tensor)
    missing = []
    for key in dict.fromkeys(owner.values()):
        if key in plan:
            continue
        if key in fresh_ok or (not strict_heads and not key.startswith("transformer.")) or _neutral(key, targets):
            report.fresh.append(key)
        elif swapped and ".attn_pool." in key and ".fn." in key:
            report.reinitialised.append(key)
        else:
            missing.append(key)
    if unused or missing or mismatched:
        lines = [f"{label} ({len(names)}): {', '.join(names)}" for label, names in
                 (("unused checkpoint tensors", unused), ("parameters missing from the checkpoint", missing),
                  ("shape mismatches", mismatched)) if names]
        raise ValueError("checkpoint does not fit the model: " + "; ".join(lines))
    with torch.no_grad():
        for key, (_, tensor) in plan.items():
            targets[key].copy_(tensor)
    report.loaded.extend(plan)
    report.attention_unused.extend(att_unused)
    return report


def check_attention_family(kind: str, family: str, inexact_attention: bool = False) -> None:
    """Refuse `family`'s pretrained attention weights for a variant whose class does not declare
    that it reproduces them exactly (`Attention.exact_weights`), unless asked to go ahead."""
    cls = get_attention_class(kind)
    if family in cls.exact_weights or inexact_attention:
        return
    able = sorted(name for name, c in ATTENTION.items() if family in c.exact_weights)
    raise ValueError(
        f"attention {kind!r} cannot load {family!r} attention weights exactly (its class declares "
        f"exact_weights: {', '.join(sorted(cls.exact_weights)) or 'none'}); variants that can: "
        f"{', '.join(able) or 'none'}. To start it from them anyway (q/k/v/o placed by role, the rest "
        "re-initialised, outputs differ until fine-tuned), pass inexact_attention=True.")


def _warn_swap(kind: str, family: str, report: LoadReport) -> None:
    exact = family in get_attention_class(kind).exact_weights
    if exact and not report.reinitialised and not report.attention_unused:
        return
    warnings.warn(
        f"attention {kind!r} loaded from another attention's weights (q/k/v/o by role); re-initialised: "
        f"{', '.join(report.reinitialised) or 'none'}; checkpoint tensors it has no use for: "
        f"{', '.join(report.attention_unused) or 'none'}. Outputs differ from the pretrained model "
        "until fine-tuned.", UserWarning, stacklevel=3)


# ---- public entry points -----------------------------------------------------------------------
def _build(cfg: ModelConfig, head: str, num_labels: int) -> nn.Module:
    if head == "encoder":
        return Transformer(cfg)
    if head == "mlm":
        return MaskedLM(cfg)
    if head == "lm":
        return CausalLM(cfg)
    if head == "classifier":
        return SequenceClassifier(cfg, num_labels)
    raise ValueError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")


def load_pretrained(path: str | Path, head: str = "encoder", num_labels: int = 2,
                    attention: AttentionConfig | None = None, dtype: torch.dtype = torch.float32,
                    inexact_attention: bool = False) -> nn.Module:
    """Build the attnlab model for an HF checkpoint directory and load its weights (in eval mode, as HF).
    `attention` swaps the variant: refused unless it loads this family exactly or `inexact_attention`."""
    hf = read_hf_config(path)
    cfg, mt = hf_to_config(hf)
    if attention is not None:
        cfg = dataclasses.replace(cfg, attention=attention)
    check_attention_family(cfg.attention.kind, mt, inexact_attention)
    if mt == "roberta" and head == "mlm" and cfg.activation != "gelu":
        raise ValueError("roberta: the lm_head always uses gelu; hidden_act differs, so head='mlm' would not match")
    model = _build(cfg, head, num_labels).to(dtype)
    mapped, dropped, unknown = map_hf_state_dict(mt, hf, read_state_dict(path))
    if unknown:
        raise ValueError(f"{path}: unknown {mt} checkpoint tensors ({len(unknown)}): {', '.join(unknown)}")
    swapped = cfg.attention.kind != "dot"
    report = assign(model, mapped, fresh_ok=CLASSIFIER_HEAD if head == "classifier" else (),
                    swapped=swapped, report=LoadReport(dropped=dropped))
    if swapped:
        _warn_swap(cfg.attention.kind, mt, report)
    return model.eval()


def transformer_of(model: nn.Module) -> Transformer:
    t = model if isinstance(model, Transformer) else getattr(model, "transformer", None)
    if not isinstance(t, Transformer):
        raise TypeError(f"{type(model).__name__} has no attnlab Transformer")
    return t


_ARCH_FIELDS = ("norm_position", "activation", "layer_norm_eps", "sharing")


def _check_arch(source: dict[str, Any], cfg: ModelConfig, path: str | Path) -> None:
    """Fields that change the function without changing any shape must agree."""
    bad = [f"{k}: checkpoint {source[k]!r} vs model {getattr(cfg, k)!r}"
           for k in _ARCH_FIELDS if k in source and source[k] != getattr(cfg, k)]
    if bad:
        hint = " (ALBERT: init with sharing='all', then attnlab.model.untie)" if "sharing" in " ".join(bad) else ""
        raise ValueError(f"{path}: checkpoint architecture differs from model: {'; '.join(bad)}{hint}")


def init_from(model: nn.Module, path: str | Path, inexact_attention: bool = False) -> LoadReport:
    """Start an existing attnlab model from a checkpoint: an HF directory or an attnlab Lightning
    `.ckpt` (state_dict keys under "model."). Strict on the transformer; head parameters load where
    names and shapes match and otherwise keep their init. Longer position tables are cut to max_len."""
    cfg = transformer_of(model).cfg
    p = Path(path).expanduser()
    report = LoadReport()
    if p.is_dir():
        hf = read_hf_config(p)
        source_cfg, mt = hf_to_config(hf)
        _check_arch(dataclasses.asdict(source_cfg), cfg, p)
        mapped, report.dropped, unknown = map_hf_state_dict(mt, hf, read_state_dict(p))
        if unknown:
            raise ValueError(f"{p}: unknown {mt} checkpoint tensors ({len(unknown)}): {', '.join(unknown)}")
        source_kind: str | None = "dot"
        family = mt  # the checkpoint family: an HF model type
    elif p.is_file():
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
        state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise ValueError(f"{p}: not a checkpoint (expected a dict with a 'state_dict')")
        mapped = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
        if not mapped:
            raise ValueError(f"{p}: no 'model.' keys in its state_dict; expected an attnlab Lightning checkpoint")
        report.dropped = [k for k in state if not k.startswith("model.")]
        source = (ckpt.get("hyper_parameters") or {}).get("model_cfg") or {}
        _check_arch(source, cfg, p)
        source_kind = (source.get("attention") or {}).get("kind")
        family = str(source_kind)  # an attnlab checkpoint's family: its attention kind
    else:
        raise ValueError(f"{p}: no such checkpoint file or directory")
    pos = "transformer.embeddings.position.weight"
    if pos in mapped and mapped[pos].shape[0] > cfg.max_len:
        report.notes.append(f"position embeddings cut from {mapped[pos].shape[0]} to max_len={cfg.max_len}")
        mapped[pos] = mapped[pos][: cfg.max_len]
    swapped = source_kind is not None and source_kind != cfg.attention.kind
    if swapped:
        check_attention_family(cfg.attention.kind, family, inexact_attention)
    assign(model, mapped, swapped=swapped, strict_heads=False, report=report)
    if swapped:
        _warn_swap(cfg.attention.kind, family, report)
    return report
