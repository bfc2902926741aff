"""Languages: gettext catalogs (Babel ``.po`` files compiled in memory at first use), money,
numbers and dates in the user's locale, and right-to-left layout for Arabic.

English is the source language (the msgids); ``bot/locales/{ar,pl}/LC_MESSAGES/bot.po`` hold
the translations with their plural rules (Arabic six forms, Polish three). In Arabic, numbers,
amounts, dates, times, account endings, /commands and Latin names are wrapped in Unicode
isolates (LRI … PDI) so they keep their left-to-right order inside right-to-left sentences.

Babel writes Arabic dates and amounts for a right-to-left context: a right-to-left mark after
each number ("2‏/12‏/2026"). Inside a left-to-right isolate those marks make little
right-to-left runs and the date is drawn "22026/12/". So an isolate never carries a bidi mark:
:meth:`Tr.ltr` strips them, and the isolate alone decides the order ("2/12/2026", drawn as
written). tests/localchat/test_browser.py checks the drawn position of every character.
"""

from __future__ import annotations

import gettext
import html
import re
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal

from ops.i18n import compiled_catalog

LANGUAGES = ("en", "ar", "pl")
NAMES = {"en": "English", "ar": "العربية", "pl": "Polski"}
LOCALES = {"en": "en_GB", "ar": "ar", "pl": "pl_PL"}
RTL = frozenset({"ar"})
CATALOGS = Path(__file__).with_name("locales")
LRI, FSI, PDI, RLM = "\u2066", "\u2068", "\u2069", "\u200f"
# marks and embeddings that would fight an isolate: LRM RLM ALM, LRE RLE PDF LRO RLO, isolates
BIDI_CONTROLS = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
_COMMAND = re.compile(r"(?<![<\w/])/[a-z_]+")


def pick_language(code: str | None, default: str = "en") -> str:
    """Telegram's ``language_code`` ("ar-SA", "pl", "en-US", None) → one of LANGUAGES."""
    base = (code or "").split("-")[0].split("_")[0].lower()
    return base if base in LANGUAGES else default


@lru_cache(maxsize=len(LANGUAGES))
def _catalog(language: str) -> gettext.NullTranslations:
    return compiled_catalog(CATALOGS / language / "LC_MESSAGES" / "bot.po", language)


def zone_of(name: str | None) -> tzinfo:
    """An IANA time zone by name; UTC for None or a name this machine does not know."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


class Tr:
    """One language's texts and formats in one time zone (the user's, ``/timezone``; UTC until
    they say). ``_`` and ``n_`` are the gettext keywords."""

    def __init__(self, language: str, zone: str | None = None) -> None:
        self.language = language if language in LANGUAGES else "en"
        self.locale = LOCALES[self.language]
        self.rtl = self.language in RTL
        self.zone = zone_of(zone)
        self.zone_name = zone if self.zone is not UTC and zone else "UTC"
        self._t = _catalog(self.language)

    def _(self, message: str, **values: Any) -> str:
        text = self._t.gettext(message)
        return text % values if values else text

    def n_(self, singular: str, plural: str, n: int, **values: Any) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text % {"n": self.number(n), **values}

    def ltr(self, text: str) -> str:
        """Keep a Latin name, number, date or code left-to-right inside Arabic text: one
        isolate, with any bidi mark inside it removed (Babel's RLMs would reorder it)."""
        return f"{LRI}{BIDI_CONTROLS.sub('', text)}{PDI}" if self.rtl else text

    def esc(self, text: str | None) -> str:
        """A value from outside (a merchant or bank name) made safe for HTML and for RTL."""
        return self.ltr(html.escape(text or "—", quote=False))

    def number(self, n: int | Decimal) -> str:
        return self.ltr(format_decimal(n, locale=self.locale))

    def money(self, amount: Decimal | None, currency: str | None, sign: str = "") -> str:
        """An amount in the user's locale; ``sign`` ("+", "−") goes inside the same isolate,
        so in Arabic it stays left of the number instead of jumping to its other side."""
        if amount is None or not currency:
            return "—"
        return self.ltr(sign + format_currency(amount, currency, locale=self.locale))

    def day(self, value: date | str | None) -> str:
        if value is None:
            return "—"
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value[:10])
            except ValueError:
                return "—"
        return self.ltr(format_date(value, "medium", locale=self.locale))

    def moment(self, value: datetime) -> str:
        """A date and time. In Arabic, two isolates: the date left-to-right, the time ("5:32 ص")
        first-strong, so its digits stay in order and the ص/م reads where Arabic puts it."""
        value = self.local(value)
        if not self.rtl:
            return format_datetime(value, "short", tzinfo=self.zone, locale=self.locale)
        day = format_date(value, "short", locale=self.locale)
        time = BIDI_CONTROLS.sub(
            "", format_time(value, "short", tzinfo=self.zone, locale=self.locale)
        )
        return f"{self.ltr(day)} {FSI}{time}{PDI}"

    def local(self, value: datetime) -> datetime:
        """``value`` on the user's clock (a naive value is UTC, as the broker sends)."""
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(self.zone)

    def clock(self, value: datetime) -> str:
        """The time of day of ``value`` on the user's clock ("14:05", "2:05 م")."""
        local = self.local(value)
        return self.ltr(format_time(local, "short", tzinfo=self.zone, locale=self.locale))

    def message(self, text: str) -> str:
        """A whole message: Arabic ones open with a right-to-left mark, and their /commands
        are isolated so they read "/link", not "link/"."""
        if not self.rtl:
            return text
        return RLM + _COMMAND.sub(lambda m: f"{LRI}{m.group(0)}{PDI}", text)


@lru_cache(maxsize=512)
def tr(language: str, zone: str | None = None) -> Tr:
    return Tr(language, zone)
