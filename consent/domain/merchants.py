"""Merchant display names and spending categories, derived without the raw descriptor's noise."""

from __future__ import annotations

import re

# ISO 18245 merchant category code ranges → the broker's spending categories.
_MCC_RANGES: tuple[tuple[int, int, str], ...] = (
    (3000, 3299, "travel"),  # airlines
    (3351, 3441, "transport"),  # car rental
    (3501, 3999, "travel"),  # hotels
    (4000, 4199, "transport"),  # rail, buses, taxis
    (4200, 4299, "transport"),
    (4411, 4411, "travel"),  # cruise lines
    (4511, 4582, "travel"),  # airlines, airports
    (4722, 4722, "travel"),  # travel agencies
    (4784, 4789, "transport"),  # tolls, transport services
    (4812, 4816, "utilities"),  # telecom
    (4821, 4829, "transfers"),  # money transfer
    (4899, 4899, "subscriptions"),  # cable and streaming
    (4900, 4900, "utilities"),
    (5200, 5299, "home"),
    (5300, 5399, "shopping"),  # department and discount stores
    (5411, 5411, "groceries"),
    (5412, 5499, "groceries"),
    (5511, 5599, "transport"),  # vehicles
    (5541, 5542, "fuel"),
    (5600, 5699, "shopping"),  # clothing
    (5700, 5799, "home"),
    (5811, 5814, "eating_out"),
    (5815, 5818, "entertainment"),  # digital goods
    (5900, 5999, "shopping"),
    (5912, 5912, "health"),
    (6010, 6011, "cash"),
    (6012, 6099, "financial"),
    (7000, 7299, "services"),
    (7011, 7011, "travel"),
    (7800, 7999, "entertainment"),
    (8000, 8099, "health"),
    (8200, 8299, "education"),
    (9000, 9999, "government"),
)


CATEGORIES: frozenset[str] = frozenset({cat for _, _, cat in _MCC_RANGES} | {"other"})


def category_for_mcc(mcc: str | None) -> str:
    """The spending category of a merchant category code (narrowest matching range wins)."""
    if mcc is None or not mcc.isdigit():
        return "other"
    code = int(mcc)
    matches = [(hi - lo, cat) for lo, hi, cat in _MCC_RANGES if lo <= code <= hi]
    return min(matches)[1] if matches else "other"


_NOISE = re.compile(r"(\*\S*|\b\d{3,}\b|\b[A-Z]{2}\b$)")
_SPACES = re.compile(r"\s+")


def clean_merchant_name(name: str | None, raw_descriptor: str | None) -> str | None:
    """The merchant's display name: the bank's clean name if it has one, else the descriptor
    with store numbers, references and the trailing country code removed, in title case."""
    if name and name.strip():
        return _SPACES.sub(" ", name).strip()[:60]
    if not raw_descriptor:
        return None
    cleaned = _SPACES.sub(" ", _NOISE.sub(" ", raw_descriptor)).strip(" -*")
    return cleaned.title()[:60] or None
