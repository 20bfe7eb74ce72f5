"""Cross-layer weight sharing as an execution order over a small pool of sub-layers
(ALBERT, Lan et al. 2020, §3.1): layer i runs attention pool[attn_order[i]] and FFN
pool[ffn_order[i]]. `untie` copies the pooled weights out so each layer owns its own — the
"use ALBERT as BERT" trick: outputs are identical until fine-tuning moves them apart.
"""

from __future__ import annotations

import copy
import dataclasses

from torch import nn


def layer_plan(sharing: str, n_layers: int) -> tuple[list[int], list[int]]:
    """Pool index per layer for attention and FFN sub-layers."""
    own = list(range(n_layers))
    one = [0] * n_layers
    plans = {"none": (own, own), "all": (one, one), "attention": (one, own), "ffn": (own, one)}
    if sharing not in plans:
        raise ValueError(f"unknown sharing {sharing!r}; valid: {', '.join(plans)}")
    return plans[sharing]


def untie(module: nn.Module) -> nn.Module:
    """Turn every shared Transformer inside `module` into an unshared one, in place; returns `module`."""
    from attnlab.model.transformer import Transformer

    for m in module.modules():
        if isinstance(m, Transformer) and m.cfg.sharing != "none":
            m.attn_pool = nn.ModuleList([copy.deepcopy(m.attn_pool[i]) for i in m.attn_order])
            m.ffn_pool = nn.ModuleList([copy.deepcopy(m.ffn_pool[i]) for i in m.ffn_order])
            m.attn_order = m.ffn_order = list(range(m.cfg.n_layers))
            m.cfg = dataclasses.replace(m.cfg, sharing="none")
    return module
