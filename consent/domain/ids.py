"""The shape every identifier has before it may reach a database: a short run of URL-safe
characters. Anything else (a NUL byte, which PostgreSQL refuses in text, a control character,
10 KB of junk) cannot name a row, so it is refused up front as "not found"."""

from __future__ import annotations

import re

MAX_ID = 128
_ID = re.compile(rf"[A-Za-z0-9_.~-]{{1,{MAX_ID}}}")


def is_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id this broker (or a bank) issues."""
    return _ID.fullmatch(value) is not None
