"""Attention variants registered by name: adding a variant = one file + one import in __init__."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from attnlab.attention.base import Attention, AttentionDims

ATTENTION: dict[str, type[Attention]] = {}

A = TypeVar("A", bound="type[Attention]")


def register(cls: A) -> A:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in ATTENTION and ATTENTION[cls.name] is not cls:
        raise ValueError(f"attention {cls.name!r} registered twice")
    ATTENTION[cls.name] = cls
    return cls


def unknown_name_message(what: str, name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}.{hint} Valid: {', '.join(sorted(valid))}"


def get_attention_class(name: str) -> type[Attention]:
    if name not in ATTENTION:
        raise ValueError(unknown_name_message("attention kind", name, list(ATTENTION)))
    return ATTENTION[name]


def build_attention(name: str, dims: AttentionDims, options: Any = None) -> Attention:
    return get_attention_class(name)(dims, options)
