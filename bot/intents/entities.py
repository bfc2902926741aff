"""Entities besides the merchant and the period: the spending category (the broker's names), the
bank (an id), how many transactions ("my last 10 payments") and amount bounds ("over 50 zł").

Every function reads normalized text (:func:`bot.intents.normalize.normalize`) and returns what
it found with the text it was found in taken out, so the merchant finder doesn't take "groceries"
or "libertas" for a shop."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from bot.intents.normalize import normalize

# the broker's spending categories (consent.domain.merchants) and how people name them;
# "*" marks a stem
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "groceries": (
        "grocer*",
        "supermarket*",
        "food shopping",
        "food store*",
        "spożywcz*",
        "zakupy spożywcze",
        "supermarket*",
        "warzywniak*",
        "بقال*",
        "البقال*",
        "مواد غذائيه",
        "سوبرماركت",
        "سوبر ماركت",
        "مقاضي",
        "المقاضي",
        "اغراض البيت",
    ),
    "eating_out": (
        "restaurant*",
        "eating out",
        "eat out",
        "dining",
        "dine out",
        "takeaway*",
        "take away",
        "takeout",
        "fast food",
        "coffee",
        "cafe",
        "cafes",
        "lunches",
        "dinners",
        "food delivery",
        "restauracj*",
        "jedzenie na mieście",
        "na mieście",
        "knajp*",
        "kawiar*",
        "kaw*",
        "fast food*",
        "مطاعم",
        "المطاعم",
        "مطعم",
        "المطعم",
        "قهوه",
        "القهوه",
        "كافيهات",
        "الكافيهات",
        "كوفي",
        "اكل برا",
        "الاكل برا",
        "وجبات",
    ),
    "transport": (
        "transport*",
        "commut*",
        "taxi*",
        "cabs",
        "bus",
        "buses",
        "train*",
        "metro",
        "tube",
        "public transport",
        "rides",
        "komunikacj*",
        "taksów*",
        "taxówk*",
        "autobus*",
        "pociąg*",
        "bilety",
        "مواصلات",
        "المواصلات",
        "تاكسي",
        "التاكسي",
        "النقل",
        "باص",
        "مترو",
    ),
    "fuel": (
        "fuel",
        "petrol",
        "diesel",
        "gas station*",
        "filling station*",
        "paliw*",
        "benzyn*",
        "tankowa*",
        "stacj* benzynow*",
        "بنزين",
        "البنزين",
        "وقود",
        "الوقود",
        "محطه",
    ),
    "shopping": (
        "shopping",
        "clothes",
        "clothing",
        "shoes",
        "ubra*",
        "ciuch*",
        "odzież*",
        "buty",
        "ملابس",
        "الملابس",
        "تسوق",
        "التسوق",
        "هدوم",
    ),
    "health": (
        "pharmac*",
        "chemist*",
        "health*",
        "medicine*",
        "drugstore*",
        "doctor*",
        "aptek*",
        "zdrowi*",
        "leki",
        "lekarstw*",
        "lekarz*",
        "صيدليه",
        "الصيدليه",
        "صيدليات",
        "الصيدليات",
        "ادويه",
        "الادويه",
        "صحه",
        "الصحه",
        "دكتور",
    ),
    "travel": (
        "travel*",
        "hotel*",
        "flight*",
        "holiday*",
        "vacation*",
        "airline*",
        "trips",
        "podróż*",
        "wakacj*",
        "urlop*",
        "lotnicz*",
        "samolot*",
        "wyjazd*",
        "سفر",
        "السفر",
        "فنادق",
        "الفنادق",
        "فندق",
        "طيران",
        "الطيران",
        "رحلات",
        "الرحلات",
        "تذاكر",
    ),
    "utilities": (
        "bills",
        "utilit*",
        "electric*",
        "water bill*",
        "phone bill*",
        "internet bill*",
        "rachunk*",
        "prąd*",
        "media",
        "opłat*",
        "فواتير",
        "الفواتير",
        "كهرباء",
        "الكهرباء",
        "فاتوره",
        "الفاتوره",
    ),
    "subscriptions": (
        "subscription*",
        "streaming",
        "subskrypc*",
        "abonament*",
        "اشتراك*",
        "الاشتراك*",
    ),
    "entertainment": (
        "entertainment",
        "games",
        "gaming",
        "movies",
        "cinema",
        "concert*",
        "rozrywk*",
        "kino",
        "kina",
        "gry",
        "ترفيه",
        "الترفيه",
        "العاب",
        "الالعاب",
        "سينما",
    ),
    "cash": ("cash withdrawal*", "atm*", "bankomat*", "gotówk*", "سحب نقدي", "الصراف", "صراف"),
}

# the banks' ids and how people write them (Polish cases, Arabic script)
BANK_WORDS: dict[str, tuple[str, ...]] = {
    "northwind": ("northwind*", "north wind", "نورثويند", "نورث ويند"),
    "libertas": ("libertas*", "ليبرتاس"),
    "wisla": ("wisla", "wisle", "wisly", "wisła", "wiśle", "wisły", "ويسلا", "فيسوا"),
    "nakheel": ("nakheel", "nakhil", "نخيل", "النخيل", "بنك النخيل"),
}

_GLUED = ("و", "ب", "ل", "ف")  # Arabic conjunctions and prepositions written onto a word


Entries = tuple[tuple[str, tuple[str, ...], tuple[bool, ...]], ...]


def _compile(table: dict[str, tuple[str, ...]]) -> Entries:
    out = []
    for name, phrases in table.items():
        for raw in sorted(set(phrases), key=len, reverse=True):
            words = tuple(normalize(w.rstrip("*")) for w in raw.split())
            stems = tuple(w.endswith("*") for w in raw.split())
            out.append((name, words, stems))
    return tuple(sorted(out, key=lambda e: -len(e[1])))


_CATEGORIES = _compile(CATEGORY_WORDS)
_BANKS = _compile(BANK_WORDS)


def _forms(token: str) -> tuple[str, ...]:
    """The token, and an Arabic one without a glued conjunction or preposition."""
    if token[:1] in _GLUED and len(token) > 3 and "\u0600" <= token[0] <= "\u06ff":
        return (token, token[1:])
    return (token,)


def _word_matches(token: str, word: str, stem: bool) -> bool:
    return any(f == word or (stem and f.startswith(word)) for f in _forms(token))


def _find(entries: Entries, text: str) -> tuple[str | None, str]:
    """The first (longest) entry found in ``text``, and ``text`` without it."""
    tokens = text.split()
    candidates = _index(entries)
    for name, words, stems in entries:
        if not any(
            _word_matches(t, words[0], stems[0]) for t in tokens if t[:2] in candidates[name, words]
        ):
            continue
        for i in range(len(tokens) - len(words) + 1):
            if all(_word_matches(tokens[i + k], words[k], stems[k]) for k in range(len(words))):
                rest = tokens[:i] + tokens[i + len(words) :]
                return name, " ".join(rest)
    return None, text


@lru_cache(maxsize=16)
def _index(entries: Entries) -> dict[tuple[str, tuple[str, ...]], frozenset[str]]:
    """Per entry, the first two letters a token (or its unglued form) must start with."""
    out = {}
    for name, words, _ in entries:
        first = words[0][:2]
        out[name, words] = frozenset({first} | {g + first[:1] for g in _GLUED})
    return out


@lru_cache(maxsize=4096)
def find_category(text: str) -> tuple[str | None, str]:
    """("groceries", the rest) for "how much on groceries"; (None, text) when none is named."""
    return _find(_CATEGORIES, text)


def is_category_word(text: str) -> bool:
    """``text`` (normalized) is nothing but a category's name ("groceries", "biedronka" isn't)."""
    found, rest = find_category(text)
    return found is not None and not rest.strip()


@lru_cache(maxsize=4096)
def find_bank(text: str) -> tuple[str | None, str]:
    """("libertas", the rest) for "balance at libertas"."""
    return _find(_BANKS, text)


_NUMBER = r"(\d+(?:[.,]\d{1,2})?)"
_MIN_WORDS = (
    "over",
    "above",
    "more than",
    "greater than",
    "bigger than",
    "at least",
    "min",
    "minimum",
    "powyżej",
    "ponad",
    "więcej niż",
    "co najmniej",
    "اكثر من",
    "أكثر من",
    "فوق",
    "أعلى من",
    "على الأقل",
)
_MAX_WORDS = (
    "under",
    "below",
    "less than",
    "smaller than",
    "at most",
    "max",
    "maximum",
    "up to",
    "poniżej",
    "mniej niż",
    "najwyżej",
    "maksymalnie",
    "maks",
    "أقل من",
    "اقل من",
    "تحت",
    "أقصى",
)


def _either(words: tuple[str, ...]) -> str:
    forms = sorted({normalize(w) for w in words}, key=len, reverse=True)
    return "(?:" + "|".join(re.escape(f) for f in forms) + ")"


_MIN, _MAX = _either(_MIN_WORDS), _either(_MAX_WORDS)
_BETWEEN = re.compile(
    rf"(?:between|miedzy|pomiedzy|بين)\s+{_NUMBER}\s+(?:and|a|i|و|الي)\s*{_NUMBER}"
)
_FROM_TO = re.compile(
    rf"(?:from|od)\s+{_NUMBER}\s+(?:to|do)\s+{_NUMBER}\s*(?:zl|pln|gbp|usd|sar|ريال|dollars|pounds)"
)
_ABOVE = re.compile(rf"{_MIN}\s+{_NUMBER}")
_BELOW = re.compile(rf"{_MAX}\s+{_NUMBER}")


def _decimal(raw: str) -> Decimal | None:
    try:
        return Decimal(raw.replace(",", "."))
    except InvalidOperation:
        return None


def find_amounts(text: str) -> tuple[Decimal | None, Decimal | None, str]:
    """(at least, at most, the rest): "payments over 50", "między 20 a 100 zł", "اقل من ١٠٠"."""
    low = high = None
    for pattern in (_BETWEEN, _FROM_TO):
        match = pattern.search(text)
        if match:
            low, high = _decimal(match.group(1)), _decimal(match.group(2))
            if low is not None and high is not None and low > high:
                low, high = high, low
            return low, high, (text[: match.start()] + " " + text[match.end() :]).strip()
    for pattern in (_ABOVE, _BELOW):
        match = pattern.search(text)
        if match:
            value = _decimal(match.group(1))
            if pattern is _ABOVE:
                low = value
            else:
                high = value
            text = (text[: match.start()] + " " + text[match.end() :]).strip()
    return low, high, " ".join(text.split())


_COUNT = re.compile(r"(?<![\d.,])(\d{1,3})(?![\d.,])")
MAX_LIMIT = 50


def find_limit(text: str) -> tuple[int | None, str]:
    """How many transactions were asked for ("my last 10 payments", "5 ostatnich transakcji")."""
    match = _COUNT.search(text)
    if match is None:
        return None, text
    n = int(match.group(1))
    if not 1 <= n <= 100:
        return None, text
    rest = (text[: match.start()] + " " + text[match.end() :]).strip()
    return min(n, MAX_LIMIT), " ".join(rest.split())
