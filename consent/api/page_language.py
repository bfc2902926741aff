"""The broker's one browser page (where the bank sends the customer back) in the customer's
language: the one the platform gave when the link started (``consent.domain.language``), else
the browser's Accept-Language. Babel catalogs in ``consent/locales/{ar,pl}``."""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from consent.domain.language import LANGUAGES, language_of_state, supported

__all__ = ["RTL", "from_accept_language", "language_of_state", "translations"]

RTL = frozenset({"ar"})
CATALOGS = Path(__file__).resolve().parents[1] / "locales"
MAX_HEADER = 512


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most (RFC 9110 q-values), if any."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "")[:MAX_HEADER].split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language = supported(tag)
        if language and quality > 0:
            ranked.append((-quality, index, language))
    return min(ranked)[2] if ranked else None


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.NullTranslations:
    po = CATALOGS / language / "LC_MESSAGES" / "consent.po"
    if language == "en" or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)
