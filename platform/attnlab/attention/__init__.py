"""Attention variants, one file each, registered by name in `ATTENTION`.

Adding a variant: write one file with a registered `Attention` subclass and import it below; the
registry-wide tests then cover it.
"""

from attnlab.attention import dot, linear, synthesizer, talking_heads  # noqa: F401  (registration)
from attnlab.attention.base import Attention, AttentionDims
from attnlab.attention.registry import ATTENTION, build_attention, get_attention_class

__all__ = ["ATTENTION", "Attention", "AttentionDims", "build_attention", "get_attention_class"]
