"""Free text → intent and entities, in English, Arabic and Polish.

    >>> classify("what did I spend at Tesco last month", "en", today=date(2026, 11, 25))
    Intent(name='transactions', ..., merchant='Tesco', date_from=2026-10-01, date_to=2026-10-31)

Keywords and phrases per language (:mod:`bot.intents.lexicon`) are matched on normalized text;
rapidfuzz forgives typos; periods and dates come from :mod:`bot.intents.dates` (dateparser for
explicit dates, Arabic-Indic digits normalized first). When two intents score close, or only a
fuzzy near-miss was found, the answer is ``unknown`` with ``candidates`` for a clarifying
question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from rapidfuzz import fuzz

from bot.intents.dates import find_period
from bot.intents.lexicon import INTENTS, LEXICON
from bot.intents.normalize import digits, normalize

NAMES = (*INTENTS, "unknown")
_NUMBER = re.compile(r"[\d./-]+")
SURE = 1.0  # an exact keyword or phrase
FUZZY_MIN = 84  # rapidfuzz ratio for a typo to count
_PREPOSITIONS = {
    "en": ("at", "in", "on", "from", "with"),
    "pl": ("w", "we", "na", "u", "z", "ze", "przy"),
    "ar": ("في", "من", "عند", "ب", "لدى"),
}
_STOP = {
    "my",
    "the",
    "a",
    "this",
    "last",
    "month",
    "week",
    "year",
    "days",
    "me",
    "i",
    "did",
    "spend",
    "spent",
    "total",
    "konto",
    "koncie",
    "kartą",
    "karta",
    "karte",
    "miesiacu",
    "tygodniu",
    "roku",
    "حسابي",
    "الحساب",
    "الشهر",
    "الاسبوع",
    "all",
    "it",
    "there",
    "them",
    "zl",
    "pln",
}


_KEYWORDS = frozenset(
    word
    for by_language in LEXICON.values()
    for words in by_language.values()
    for keyword in words
    for word in keyword.split()
    if not keyword.endswith("*")
)
_STEMS = tuple(
    keyword.rstrip("*")
    for by_language in LEXICON.values()
    for words in by_language.values()
    for keyword in words
    if keyword.endswith("*") and " " not in keyword
)


@dataclass(frozen=True)
class Intent:
    """What the person wants, how sure we are, and what they said about it."""

    name: str
    confidence: float = 1.0
    merchant: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    candidates: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def _known(token: str) -> bool:
    """One of the lexicon's own words, in any language and intent."""
    return token in _KEYWORDS or any(token.startswith(stem) for stem in _STEMS)


def _keyword_score(keyword: str, text: str, tokens: list[str]) -> float:
    stem = keyword.endswith("*")
    word = keyword.rstrip("*")
    if " " in word:
        if f" {word} " in f" {text} ":
            return SURE + 0.5 * word.count(" ")
        if len(word) >= 8 and len(text) >= len(word):
            found = fuzz.partial_ratio_alignment(word, text, score_cutoff=90)
            # a typo inside the phrase, but it starts where a word starts: "disconnect my bank"
            # does not contain "connect my"
            if found is not None and (found.dest_start == 0 or text[found.dest_start - 1] == " "):
                return 0.8
        return 0.0
    for token in tokens:
        if token == word or (stem and token.startswith(word)):
            return SURE
    if len(word) < 5:
        return 0.0
    best = 0.0
    for token in tokens:
        if (abs(len(token) - len(word)) > 3 and not stem) or _known(token):
            continue  # a typo is not a word we know: "disconnect" is not a typo of "connect"
        candidate = token[: len(word) + 2] if stem else token
        ratio = fuzz.ratio(word, candidate)
        if ratio >= FUZZY_MIN:
            best = max(best, 0.7 * ratio / 100)
    return best


def _scores(text: str, language: str) -> dict[str, float]:
    tokens = text.split()
    languages = [language] + [lang for lang in ("en", "ar", "pl") if lang != language]
    scores: dict[str, float] = {}
    for intent in INTENTS:
        total = 0.0
        for lang in languages:
            weight = 1.0 if lang == language else 0.8
            for keyword in LEXICON[intent][lang]:
                total += weight * _keyword_score(keyword, text, tokens)
        if total:
            scores[intent] = total
    return scores


def _merchant(original: str, rest: str, language: str) -> str | None:
    """The words after "at"/"w"/"في" that aren't a period or a filler, as the person wrote them."""
    words = rest.split()
    preps = _prepositions(language)
    for i, word in enumerate(words):
        if word not in preps or (i == 0 and word == "من"):  # a leading من asks "who"
            continue
        taken = []
        for nxt in words[i + 1 :]:
            if not _could_be_a_name(nxt, preps):
                break
            taken.append(nxt)
        if taken:
            return _surface(original, " ".join(taken[:3]))
    return None


def _prepositions(language: str) -> tuple[str, ...]:
    return _PREPOSITIONS.get(language, ()) + _PREPOSITIONS["en"]


def _filler(word: str, preps: tuple[str, ...]) -> bool:
    """A filler word, a preposition, a number or a date ("31.12.2030")."""
    return word in _STOP or word in preps or _NUMBER.fullmatch(word) is not None


def _could_be_a_name(word: str, preps: tuple[str, ...]) -> bool:
    """Not a filler and not one of the classifier's own keywords."""
    return not (_filler(word, preps) or _known(word))


def _surface(original: str, normalized: str) -> str:
    """Find ``normalized`` words in the original text, keeping its case and letters."""
    pattern = r"\s+".join(re.escape(w) for w in normalized.split())
    folded = normalize(original)
    match = re.search(pattern, folded)
    if match is None:
        return normalized
    source = digits(original)
    words = source.split()
    start_word = len(folded[: match.start()].split())
    count = len(normalized.split())
    picked = words[start_word : start_word + count]
    cleaned = " ".join(picked).strip(" ?!.,؟،")
    return cleaned or normalized


def classify(text: str, language: str, *, today: date | None = None) -> Intent:
    """The intent of ``text`` written by someone whose language is ``language``."""
    today = today or date.today()
    language = language if language in ("en", "ar", "pl") else "en"
    normalized = normalize(text[:500])
    if not normalized:
        return Intent("unknown", 0.0)
    start, end, rest = find_period(normalized, language, today)
    scores = _scores(rest, language)
    spending = "transactions" in scores
    merchant = _merchant(text, rest, language) if spending or start or not scores else None
    if spending and (start or merchant):
        scores["transactions"] += 0.5  # a merchant or a period backs up the spending words
    elif (start or merchant) and "balance" not in scores:
        # a period or a merchant and (almost) nothing else ("Tesco last month?"): spending
        preps = _prepositions(language)
        unexplained = [w for w in rest.split() if not _filler(w, preps)]
        if merchant is None and len(rest.split()) == 1 and _could_be_a_name(rest, preps):
            merchant = _surface(text, rest)
        elif merchant is not None:
            unexplained = [w for w in unexplained if w not in normalize(merchant).split()]
        if len(unexplained) <= (1 if start else 0):
            scores["transactions"] = 0.9
        elif start:  # "where did all my money go this month": a period says history
            scores["transactions"] = 0.7
        else:  # "lunch with Anna": ask rather than guess
            return Intent("unknown", 0.3, merchant, start, end, ("transactions",))
    if len(scores) > 1:
        scores.pop("greeting", None)  # "hi, what's my balance?": answer the question
    if not scores:
        return Intent("unknown", 0.0, merchant, start, end)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    # spending questions often also say "account" or "money": the spending words decide
    if best == "balance" and scores.get("transactions", 0) >= SURE and (start or merchant):
        best, top = "transactions", scores["transactions"] + 0.5
    confidence = top / (top + second) if second else min(1.0, top)
    if top < 0.6 or (second and confidence < 0.58):
        candidates = tuple(name for name, _ in ranked[:3])
        return Intent("unknown", confidence, merchant, start, end, candidates)
    if best != "transactions":
        merchant, start, end = None, None, None
    return Intent(best, round(confidence, 3), merchant, start, end)
