"""The bank's pages in the customer's language: English, Arabic (right to left) and Polish.

The language comes from the authorization request (``ui_locales``, OpenID Connect Core 1.0
§3.1.2.1: the client passes its user's language) and otherwise from the browser's
``Accept-Language``. English is the source language (the msgids);
``bank_mock/locales/{ar,pl}/LC_MESSAGES/bank.po`` hold the translations, compiled in memory at
first use.
"""

from __future__ import annotations

import gettext
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.dates import format_date

from ops.i18n import compiled_catalog, preferred_language

LANGUAGES = ("en", "ar", "pl")
RTL = frozenset({"ar"})
_LOCALES = {"en": "en_GB", "ar": "ar", "pl": "pl_PL"}
CATALOGS = Path(__file__).with_name("locales")
MAX_HEADER = 512  # longer language headers are not a browser's


def _base(tag: str) -> str:
    return tag.strip().split("-")[0].split("_")[0].lower()


def from_ui_locales(value: str | None) -> str | None:
    """The first supported language of a space-separated ``ui_locales`` list, if any."""
    for tag in (value or "")[:MAX_HEADER].split():
        if _base(tag) in LANGUAGES:
            return _base(tag)
    return None


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most (RFC 9110 §12.5.4 q-values), if any."""
    return preferred_language(header, lambda tag: _base(tag) if _base(tag) in LANGUAGES else None)


def choose(ui_locales: str | None, accept_language: str | None) -> str:
    """What the client asked for, else what the browser prefers, else English."""
    return from_ui_locales(ui_locales) or from_accept_language(accept_language) or "en"


@lru_cache(maxsize=len(LANGUAGES))
def _catalog(language: str) -> gettext.NullTranslations:
    return compiled_catalog(CATALOGS / language / "LC_MESSAGES" / "bank.po", language)


class PageText:
    """One language's texts for a page; templates call ``t._("…", name=value)``."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else "en"
        self.dir = "rtl" if self.language in RTL else "ltr"
        self._t = _catalog(self.language)

    def _(self, message: str, **values: Any) -> str:
        text = self._t.gettext(message)
        return text % values if values else text

    def date(self, value: datetime) -> str:
        return format_date(value, "long", locale=_LOCALES[self.language])


@lru_cache(maxsize=len(LANGUAGES))
def page_text(language: str) -> PageText:
    return PageText(language)
