"""Text normalization for matching: case, punctuation, Arabic letter forms and digits, and a
diacritic-free form of Polish so "ile wydalem" matches "ile wydałem"; apostrophes are dropped so
"what's" matches "whats"."""

from __future__ import annotations

import re
import unicodedata

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_ARABIC = str.maketrans(
    {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي"}
)
_POLISH = str.maketrans("ąćęłńóśźż", "acelnoszz")
_MARKS = re.compile(r"[\u064b-\u065f\u0670\u0640]")  # tashkeel and tatweel
_PUNCT = re.compile(r"[^\w\s'&.-]|(?<!\w)[.'&-]|[.'&-](?!\w)")
_SPACES = re.compile(r"\s+")
_APOSTROPHES = re.compile(r"['’‘`]")


def digits(text: str) -> str:
    """Arabic-Indic and Persian digits → ASCII."""
    return text.translate(_DIGITS)


def normalize(text: str) -> str:
    """Case-folded, punctuation-free, Arabic-unified, ASCII-digit, diacritic-free text.

    Idempotent: ``normalize(normalize(t)) == normalize(t)``."""
    text = unicodedata.normalize("NFKC", text)
    text = digits(text).casefold()
    text = _MARKS.sub("", text).translate(_ARABIC).translate(_POLISH)
    text = _APOSTROPHES.sub("", text)  # "what's" and "whats", "don't" and "dont" read alike
    text = _PUNCT.sub(" ", text.replace("؟", " ").replace("،", " "))
    return _SPACES.sub(" ", text).strip()
