"""The bank's one parser for numeric query parameters: ASCII digits only, bounded.
(``str.isdigit`` accepts "²" and "①", which ``int`` then refuses with a ValueError.)"""

from __future__ import annotations

import re

from aiohttp import web

from bank_mock.errors import BankError

_DIGITS = re.compile(r"[0-9]{1,9}")


def query_int(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    """``?name=`` as an int in ``[low, high]``; an OBIE 400 for anything else."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if _DIGITS.fullmatch(raw) is None or not low <= int(raw) <= high:
        raise BankError(400, f"{name} must be a whole number from {low} to {high}", path=name)
    return int(raw)
