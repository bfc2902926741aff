"""Query-string and path parsing shared by every broker route: one numeric parser (ASCII digits
only, bounded) and one id guard, so malformed input is a typed 4xx and never reaches the
database or ``int()``."""

from __future__ import annotations

import re
from decimal import Decimal

from aiohttp import web

from consent.domain.ids import is_id
from consent.service.errors import BrokerError, bad_request, not_found

_DIGITS = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{1,13}(\.[0-9]{1,4})?")


def query_int(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    """``?name=`` as an int in ``[low, high]``; 400 for anything but ASCII digits in range
    (``str.isdigit`` accepts "²" and "①", which ``int`` then refuses)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if _DIGITS.fullmatch(raw) is None or not low <= int(raw) <= high:
        raise bad_request(f"{name} must be a whole number between {low} and {high}")
    return int(raw)


def query_decimal(request: web.Request, name: str, *, high: Decimal, code: str) -> Decimal | None:
    """``?name=`` as a non-negative decimal up to ``high`` (ASCII digits, an optional point and
    up to four decimals), or None when absent or empty; 400 ``code`` otherwise. (``Decimal``
    itself accepts "١٢", "1_000" and "1e5".)"""
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    if _DECIMAL.fullmatch(raw) is None or Decimal(raw) > high:
        raise bad_request(f"{name} must be a decimal like 12.50", code)
    return Decimal(raw)


def check_ids(request: web.Request) -> None:
    """Every id in the path has the shape of an id (else 404: no such row can exist), and no
    query value carries a control character (else 400). The browser-facing callback answers
    HTML pages, so it checks its own ids."""
    if request.path.startswith("/callback/"):
        return
    for value in request.match_info.values():
        if not is_id(value):
            raise not_found("resource")
    if request.query_string and any(
        ord(c) < 0x20 or c == "\x7f" for v in request.query.values() for c in v
    ):
        raise BrokerError(
            400, "invalid_request", "query values must not contain control characters"
        )
