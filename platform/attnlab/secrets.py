"""Secrets never reach a file or a log: `redact` masks the password of every URL in a text
(`postgresql://user:pw@host/db` → `postgresql://user:***@host/db`, and `?password=…` query values).

The lowest layer (imports nothing from attnlab), so records, reports, tracking, errors and the CLI all
use this one function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MASK = "***"
# scheme://user:password@host — the password may hold anything but '@', '/' and whitespace (RFC 3986
# makes a literal '@' in a password percent-encoded, so the last '@' before the host ends it).
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*:)(?P<pw>[^\s'\"]+?)(?P<at>@[^@\s'\"/]*(?:[/\s'\"]|$))")
_QUERY = re.compile(r"(?P<head>[?&;](?:password|passwd|pwd|secret|token|api_key|apikey)=)(?P<pw>[^&\s'\"]+)",
                    re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with every URL password (userinfo or query parameter) replaced by ***."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: m["head"] + MASK + m["at"], text)
    return _QUERY.sub(lambda m: m["head"] + MASK, text)


def redact_obj(value: Any) -> Any:
    """`redact` applied to every string inside plain data (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_obj(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return type(value)(redact_obj(v) for v in value) if isinstance(value, (list, tuple)) else value
    return value
