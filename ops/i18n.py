"""Language plumbing every service with pages or messages shares (they cannot import each
other): a gettext catalog compiled in memory from its ``.po`` file, and the language a browser
prefers most from its ``Accept-Language`` header."""

from __future__ import annotations

import gettext
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

MAX_HEADER = 512


def compiled_catalog(po: Path, language: str) -> gettext.NullTranslations:
    """``po`` compiled in memory; English (the msgids) or a missing file translates nothing."""
    if language == "en" or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def preferred_language(header: str | None, supported: Callable[[str], str | None]) -> str | None:
    """The supported language the browser prefers most (RFC 9110 §12.5.4 q-values), if any;
    ``supported`` maps a language tag to a supported language or None."""
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
