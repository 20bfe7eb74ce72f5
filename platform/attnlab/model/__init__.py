"""The shared Transformer and its heads. Imports only torch (and attnlab.attention/config).

Names are resolved lazily: `attnlab.attention` imports `attnlab.attention.masks`, and an eager import
of the Transformer here would close an import cycle.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AttentionMask": "attnlab.attention.masks",
    "Transformer": "attnlab.model.transformer",
    "SequenceClassifier": "attnlab.model.heads",
    "MaskedLM": "attnlab.model.heads",
    "CausalLM": "attnlab.model.heads",
    "layer_plan": "attnlab.model.sharing",
    "untie": "attnlab.model.sharing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'attnlab.model' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
