"""The broker's one browser page (where the bank sends the customer back) in the customer's
language: the one the platform gave when the link started (``consent.domain.language``), else
the browser's Accept-Language. Babel catalogs in ``consent/locales/{ar,pl}``."""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

from consent.domain.language import LANGUAGES, language_of_state, supported
from ops.i18n import compiled_catalog, preferred_language

__all__ = ["RTL", "from_accept_language", "language_of_state", "translations"]

RTL = frozenset({"ar"})
CATALOGS = Path(__file__).resolve().parents[1] / "locales"


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most (RFC 9110 q-values), if any."""
    return preferred_language(header, supported)


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.NullTranslations:
    return compiled_catalog(CATALOGS / language / "LC_MESSAGES" / "consent.po", language)
