"""Free text → intent and entities, in English, Arabic and Polish.

    >>> classify("what did I spend at Tesco last month", "en", today=date(2026, 11, 25))
    Intent(name='spending', ..., merchant='Tesco', date_from=2026-10-01, date_to=2026-10-31)
    >>> classify("how much did I spend on groceries", "en").category
    'groceries'

Names: balance, transactions (a list), spending (a total), insights (totals by category and
the change from the period before, with a chart), link, consents, privacy, help,
language, cancel, freeze_card, unfreeze_card, support, receipts (switching real-time receipts,
quiet hours), smalltalk, unknown. Entities: merchant (as
written; the broker matches it in any script), category (the broker's names), bank (an id),
date_from/date_to, limit, amount_min/amount_max (:mod:`bot.intents.entities`); spending, transfers
and small talk are told apart last (:mod:`bot.intents.refine`).

Keywords and phrases per language (:mod:`bot.intents.lexicon`) are matched on normalized text;
a word we don't know that is close to one we do is read as that word (rapidfuzz forgives
typos; Arabic "و"/"ب"/"ال" prefixes are taken off); a match inside a longer match of another
intent does not count ("stop sharing my data" is about consents, not cancel or privacy);
periods and dates come from :mod:`bot.intents.dates` (dateparser for explicit dates,
Arabic-Indic digits normalized first). When two intents score close, or only a fuzzy near-miss
was found, the answer is ``unknown`` with ``candidates`` for a clarifying question.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Indel

from bot.intents.dates import find_period
from bot.intents.entities import (
    find_amounts,
    find_bank,
    find_category,
    find_limit,
    is_category_word,
)
from bot.intents.lexicon import ALIASES, BALANCE_CORE, FILLERS, INTENTS, LEXICON, MONEY, WHOLE
from bot.intents.normalize import digits, normalize
from bot.intents.refine import refine

NAMES = (*INTENTS, "spending", "insights", "unknown")
_NUMBER = re.compile(r"[\d./-]+")
SURE = 1.0  # an exact keyword or phrase
FUZZY_MIN = 84  # rapidfuzz ratio for a typo to count
FUZZY_LENGTH = 5  # shorter keywords are only matched exactly
_OTHER_LANGUAGE = 0.8  # a keyword of another language than the person's counts for less
# the words before a merchant: "at Tesco", "w Biedronce", "في كارفور"
_PREPOSITIONS = {
    "en": ("at", "in", "on", "from", "with"),
    "pl": ("w", "we", "na", "u", "z", "ze", "przy"),
    "ar": ("في", "من", "عند", "ب", "لدى"),
}
# ... and ones that only introduce a merchant in a question about spending ("paid for
# Netflix", "przelewy do Anny", "صرفت على نون"), not in "switch to Polish"
_SPENDING_PREPOSITIONS = {
    "en": ("for", "to"),
    "pl": ("za", "dla", "do"),
    "ar": ("على", "ع", "ل"),
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
    # Arabic words that look like a merchant after a glued ب or ل: "ببطاقتي", "بدي", "لسه"
    "بطاقه",
    "بطاقتي",
    "البطاقه",
    "كرتي",
    "الكرت",
    "بدي",
    "بدك",
    "بتاعي",
    "بتاعتي",
    "بكره",
    "بعدين",
    "برضو",
    "لسه",
    "ليش",
    "ليه",
    "لماذا",
    "لحد",
    "لغايه",
    "بعد",
    "بين",
    "بدون",
    "بالضبط",
}
_ARABIC_PREFIXES = ("وال", "بال", "فال", "كال", "لل", "ال", "و", "ف", "ب", "ل")
FUZZY_MIN_ARABIC = 90  # one letter changed in a short Arabic word is often another word


@dataclass(frozen=True)
class Intent:
    """What the person wants, how sure we are, and what they said about it.

    ``category`` is one of the broker's spending categories, ``bank`` a bank id; ``topic`` says
    more about a ``smalltalk`` (thanks, bye, greeting) or an ``unknown`` (transfer) message."""

    name: str
    confidence: float = 1.0
    merchant: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    candidates: tuple[str, ...] = ()
    category: str | None = None
    bank: str | None = None
    limit: int | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    topic: str | None = None


@dataclass(frozen=True)
class _Keyword:
    """One lexicon entry, normalized: its words, which of them are stems, and its intent."""

    intent: str
    language: str
    words: tuple[str, ...]
    stems: tuple[bool, ...]
    weak: bool
    text: str

    def word_matches(self, k: int, token: str) -> bool:
        word = self.words[k]
        if token == word or (self.stems[k] and token.startswith(word)):
            return True
        if token[:2] != "ال" and word[:2] != "ال":
            return False
        token, word = _bare(token), _bare(word)  # "مشاركة" and "المشاركة" alike
        return token == word or (self.stems[k] and token.startswith(word))

    @property
    def score(self) -> float:
        return SURE + 0.5 * (len(self.words) - 1)


def _bare(word: str) -> str:
    """An Arabic word without its article: "المشاركه" → "مشاركه"."""
    return word[2:] if word.startswith("ال") and len(word) >= 5 else word


def _parse(raw: str, intent: str, language: str) -> _Keyword:
    weak = raw.startswith("~")
    words: list[str] = []
    stems: list[bool] = []
    for part in raw.lstrip("~").split():
        pieces = normalize(part.rstrip("*")).split()
        words += pieces
        stems += [False] * (len(pieces) - 1) + [part.endswith("*")]
    return _Keyword(intent, language, tuple(words), tuple(stems), weak, raw)


_ALL = tuple(
    _parse(raw, intent, language)
    for intent, by_language in LEXICON.items()
    for language, keywords in by_language.items()
    for raw in keywords
)
_BY_FIRST_WORD: dict[str, list[_Keyword]] = defaultdict(list)  # exact first word
_BY_FIRST_STEM: dict[str, list[_Keyword]] = defaultdict(list)  # first three letters of a stem
for _keyword in _ALL:
    if _keyword.stems[0]:
        _BY_FIRST_STEM[_bare(_keyword.words[0])[:3]].append(_keyword)
    else:
        _BY_FIRST_WORD[_bare(_keyword.words[0])].append(_keyword)

_KEYWORDS = frozenset(
    word for k in _ALL for word, stem in zip(k.words, k.stems, strict=True) if not stem
)
_STEMS = frozenset(word for k in _ALL for word, stem in zip(k.words, k.stems, strict=True) if stem)
_STEMS_BY_PREFIX: dict[str, tuple[str, ...]] = {
    prefix: tuple(s for s in _STEMS if s.startswith(prefix)) for prefix in {s[:3] for s in _STEMS}
}
# what a typo may be read as: words and stems long enough that a near-miss is telling
_VOCABULARY = tuple(sorted(w for w in _KEYWORDS if len(w) >= FUZZY_LENGTH))
_STEMS_BY_LENGTH: dict[int, tuple[str, ...]] = defaultdict(tuple)
for _stem in sorted(_STEMS):
    if len(_stem) >= FUZZY_LENGTH:
        _STEMS_BY_LENGTH[len(_stem)] += (_stem,)
_FILLERS = frozenset(normalize(w) for w in FILLERS)
_ALIASES = {normalize(k): normalize(v) for k, v in ALIASES.items()}
_WHOLE = {normalize(k): v for k, v in WHOLE.items()}
_CORE = frozenset(_parse(raw, "balance", "").words for raw in BALANCE_CORE)
_MONEY = tuple(_parse(raw, "", "") for raw in MONEY)


@lru_cache(maxsize=8192)
def _known(token: str) -> bool:
    """One of the lexicon's own words, in any language and intent."""
    if token in _KEYWORDS:
        return True
    return any(token.startswith(stem) for stem in _STEMS_BY_PREFIX.get(token[:3], ()))


def _common(a: str, b: str) -> int:
    """Letters in common, in order (the longest common subsequence)."""
    return (len(a) + len(b) - Indel.distance(a, b)) // 2


def _truncated(token: str, word: str) -> bool:
    """``token`` is the start of ``word``: another, shorter word ("polec", "dostęp"), not a
    typo of it ("polecenia", "dostępne")."""
    return len(token) < len(word) and word.startswith(token)


@lru_cache(maxsize=8192)
def _correct(token: str) -> tuple[str, float]:
    """The lexicon word ``token`` stands for, and how sure that is (1.0: it is that word).

    "balanse" → "balance" (0.6), "والمعاملات" → "المعاملات" (0.95); a word the lexicon knows, a
    filler, a short or non-alphabetic token stays as it is."""
    if (
        len(token) < 4
        or not token.isalpha()
        or _known(token)
        or token in _STOP
        or token in _FILLERS
    ):
        return token, 1.0
    cutoff = FUZZY_MIN
    if "\u0600" <= token[0] <= "\u06ff":  # Arabic: a conjunction or preposition glued on
        for prefix in _ARABIC_PREFIXES:
            bare = token[len(prefix) :]
            if token.startswith(prefix) and len(bare) >= 3 and _known(bare):
                return bare, 0.95
        cutoff = FUZZY_MIN_ARABIC
    hits = []  # (-letters in common, -ratio, word)
    found = process.extractOne(token, _VOCABULARY, scorer=fuzz.ratio, score_cutoff=cutoff)
    if found is not None and not _truncated(token, found[0]):
        hits.append((-_common(token, found[0]), -found[1], found[0]))
    for length, stems in _STEMS_BY_LENGTH.items():
        # the stem against the start of the token, allowing one letter more or less
        for cut in {length - 1, length, length + 1}:
            if cut < FUZZY_LENGTH or len(token) < cut:
                continue
            hit = process.extractOne(token[:cut], stems, scorer=fuzz.ratio, score_cutoff=cutoff)
            if hit is not None and not _truncated(token[:cut], hit[0]):
                hits.append((-_common(token[:cut], hit[0]), -hit[1], hit[0]))
    if not hits:
        return token, 1.0
    # the one that explains most of the token: "transactoins" is "transaction*" (10 letters in
    # common), not "transakc*" (7), though "transac" is closer to that
    _, ratio, best = min(hits)
    return best, 0.7 * -ratio / 100


@dataclass(frozen=True)
class _Match:
    keyword: _Keyword
    start: int
    end: int  # exclusive, in tokens
    factor: float  # 1.0 exact, less when it needed a typo fixed

    def covers(self, other: _Match) -> bool:
        """This match spans ``other`` and is the bigger one."""
        if not (self.start <= other.start and other.end <= self.end) or self is other:
            return False
        mine = (self.end - self.start, len(self.keyword.words), len(self.keyword.text))
        theirs = (other.end - other.start, len(other.keyword.words), len(other.keyword.text))
        return mine > theirs


def _phrase_end(keyword: _Keyword, tokens: list[str], start: int) -> int | None:
    """Where ``keyword`` ends if it starts at ``tokens[start]``; up to two fillers may stand
    between its words ("stan moich kont")."""
    i = start + 1
    for k in range(1, len(keyword.words)):
        skipped = 0
        while (
            i < len(tokens)
            and not keyword.word_matches(k, tokens[i])
            and tokens[i] in _FILLERS
            and skipped < 2
        ):
            i += 1
            skipped += 1
        if i >= len(tokens) or not keyword.word_matches(k, tokens[i]):
            return None
        i += 1
    return i


def _matches(tokens: list[str], factors: list[float]) -> list[_Match]:
    found = []
    for i, token in enumerate(tokens):
        bare = _bare(token)
        for keyword in (*_BY_FIRST_WORD.get(bare, ()), *_BY_FIRST_STEM.get(bare[:3], ())):
            if not keyword.word_matches(0, token):
                continue
            end = _phrase_end(keyword, tokens, i)
            if end is not None:
                found.append(_Match(keyword, i, end, min(factors[i:end])))
    # a match inside a bigger one doesn't count: "stop sharing" is not "stop"
    kept = [m for m in found if not any(other.covers(m) for other in found)]
    strong = {m.keyword.intent for m in kept if not m.keyword.weak}
    return [m for m in kept if not m.keyword.weak or not strong - {m.keyword.intent}]


@dataclass
class _Found:
    scores: dict[str, float] = field(default_factory=dict)
    exact: set[str] = field(default_factory=set)  # intents with a match that needed no typo
    core_balance: bool = False  # "balance" itself was said, not only "how much money"


def _scores(text: str, language: str) -> _Found:
    tokens = [_ALIASES.get(t, t) for t in text.split()]
    corrected = [_correct(t) for t in tokens]
    found = _Found()
    # the same intent twice over the same words ("menu" in English and Polish) counts once
    best: dict[tuple[str, int, int], float] = {}
    for match in _matches([c[0] for c in corrected], [c[1] for c in corrected]):
        keyword = match.keyword
        weight = 1.0 if keyword.language == language else _OTHER_LANGUAGE
        where = (keyword.intent, match.start, match.end)
        best[where] = max(best.get(where, 0.0), weight * keyword.score * match.factor)
        if match.factor >= 0.9:
            found.exact.add(keyword.intent)
        found.core_balance |= keyword.words in _CORE
    for (intent, _, _), score in best.items():
        found.scores[intent] = found.scores.get(intent, 0.0) + score
    return found


def _talks_money(words: list[str]) -> bool:
    return any(m.word_matches(0, w) for w in words for m in _MONEY)


def _merchant(original: str, rest: str, language: str, spending: bool) -> str | None:
    """The words after "at"/"w"/"في" that aren't a period or a filler, as the person wrote them."""
    words = rest.split()
    preps = _prepositions(language)
    openers = preps + (_spending_prepositions(language) if spending else ())
    for i, word in enumerate(words):
        if word not in openers or (i == 0 and word == "من"):  # a leading من asks "who"
            continue
        following = words[i + 1 :]
        while following and following[0] in _FILLERS and following[0] not in preps:
            following = following[1:]  # "at the Body Shop"
        taken = []
        for nxt in following:
            if not _could_be_a_name(nxt, preps) or nxt in _FILLERS:
                break
            taken.append(nxt)
        if taken:
            return _surface(original, " ".join(taken[:3]))
    if spending and language == "ar":
        return _glued_merchant(original, words, preps)
    return None


_HISTORY_WORDS = tuple(
    k for k in _ALL if k.intent == "transactions" and len(k.words) == 1 and not k.weak
)


# words that describe payments (or ask for them) rather than name a shop: "online purchases",
# "big payments", "show transactions"
_DESCRIBING = frozenset(
    {
        "show",
        "list",
        "display",
        "see",
        "view",
        "get",
        "find",
        "check",
        "give",
        "send",
        "need",
        "want",
        "all",
        "only",
        "just",
        "more",
        "less",
        "few",
        "many",
        "much",
        "some",
        "online",
        "big",
        "bigger",
        "biggest",
        "large",
        "larger",
        "largest",
        "huge",
        "small",
        "smaller",
        "smallest",
        "tiny",
        "recent",
        "pending",
        "card",
        "contactless",
        "foreign",
        "international",
        "monthly",
        "weekly",
        "daily",
        "yearly",
        "annual",
        "latest",
        "new",
        "newest",
        "old",
        "oldest",
        "other",
        "direct",
        "regular",
        "recurring",
        "bank",
        "atm",
        "debit",
        "credit",
        "weird",
        "strange",
        "suspicious",
        "unknown",
        "odd",
        "duplicate",
        "double",
        "failed",
        "declined",
        "refunded",
        "cancelled",
        "outgoing",
        "incoming",
        "any",
        "every",
        "each",
        "which",
        "what",
        "whose",
        "those",
        "these",
        "today",
        "tonight",
        "cash",
    }
)


def _merchant_before(original: str, rest: str) -> str | None:
    """A name just before a history word, as English puts it: "my Amazon payments", "netflix
    charges"."""
    words = rest.split()
    for i in range(len(words) - 1):
        word, following = words[i], words[i + 1]
        if (
            word.isascii()
            and word not in _DESCRIBING
            and _could_be_a_name(word, _prepositions("en"))
            and any(k.word_matches(0, following) for k in _HISTORY_WORDS)
        ):
            return _surface(original, word)
    return None


def _glued_merchant(original: str, words: list[str], preps: tuple[str, ...]) -> str | None:
    """An Arabic merchant written with its preposition: "بكارفور", "لنتفليكس"."""
    for word in words:
        bare = word[1:]
        if (
            word[:1] in ("ب", "ل")
            and not bare.startswith("ال")
            and len(bare) >= 3
            and _could_be_a_name(word, preps)
            and _could_be_a_name(bare, preps)
        ):
            surface = _surface(original, word)
            return surface[1:] if len(surface) > 1 else bare
    return None


@lru_cache(maxsize=8)
def _prepositions(language: str) -> tuple[str, ...]:
    words = _PREPOSITIONS.get(language, ()) + _PREPOSITIONS["en"]
    return tuple(normalize(w) for w in words)


@lru_cache(maxsize=8)
def _spending_prepositions(language: str) -> tuple[str, ...]:
    words = _SPENDING_PREPOSITIONS.get(language, ()) + _SPENDING_PREPOSITIONS["en"]
    return tuple(normalize(w) for w in words)


def _filler(word: str, preps: tuple[str, ...]) -> bool:
    """A filler word, a preposition, a number or a date ("31.12.2030")."""
    return word in _STOP or word in _FILLERS or word in preps or _NUMBER.fullmatch(word) is not None


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
    """The intent of ``text`` written by someone whose language is ``language``, with its
    entities: merchant, category, bank, period, how many, amount bounds."""
    today = today or date.today()
    language = language if language in ("en", "ar", "pl") else "en"
    normalized = normalize(text[:500])
    if not normalized:
        return refine(text, "", language, Intent("unknown", 0.0))
    if normalized in _WHOLE:  # "no", "nie", "لا"
        return refine(text, normalized, language, Intent(_WHOLE[normalized], 1.0))
    start, end, rest = find_period(normalized, language, today)
    low, high, rest = find_amounts(rest)
    bank, rest = find_bank(rest)
    category, without_category = find_category(rest)
    core = _classify(text, rest, language, start, end, category, without_category)
    merchant = core.merchant
    if merchant is not None and (
        is_category_word(normalize(merchant)) or find_bank(normalize(merchant))[0] is not None
    ):
        merchant = None  # "spend on groceries" names a category, "at libertas" a bank
    if merchant is None and core.name == "transactions":
        merchant = _merchant_before(text, without_category)
    limit = None
    if core.name == "transactions":
        limit, _ = find_limit(rest)
    return refine(
        text,
        rest,
        language,
        Intent(
            core.name,
            core.confidence,
            merchant,
            core.date_from,
            core.date_to,
            core.candidates,
            category=category,
            bank=bank,
            limit=limit,
            amount_min=low,
            amount_max=high,
        ),
    )


def _classify(
    text: str,
    rest: str,
    language: str,
    start: date | None,
    end: date | None,
    category: str | None,
    without_category: str,
) -> Intent:
    """The intent and merchant of ``rest`` (normalized, the period taken out); the merchant is
    looked for in ``without_category`` (no "eating out" in it to read "eating" from)."""
    found = _scores(rest, language)
    scores = found.scores
    spending = "transactions" in scores
    merchant = (
        _merchant(text, without_category, language, spending)
        if spending or start or not scores
        else None
    )
    if category is not None and not scores:
        scores["transactions"] = 0.9  # "groceries last month?"
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
        elif start and (_talks_money(unexplained) or all(map(_known, unexplained))):
            # "where did all my money go this month": a period and money words say history
            scores["transactions"] = 0.7
        elif not scores:
            # "lunch with Anna", "what's the weather in Riyadh today": ask rather than guess
            return Intent("unknown", 0.3, merchant, start, end, ("transactions",))
    # a spending word decides between the two when "balance" itself wasn't said ("how much
    # money did I spend") or a period or a merchant says history ("transactions in my account
    # last month")
    if (
        "balance" in scores
        and "transactions" in found.exact
        and (start or merchant or not found.core_balance)
    ):
        del scores["balance"]
    if len(scores) > 1:
        scores.pop("smalltalk", None)  # "hi, what's my balance?": answer the question
    if not scores:
        return Intent("unknown", 0.0, merchant, start, end)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    confidence = top / (top + second) if second else min(1.0, top)
    if top < 0.6 or (second and confidence < 0.58):
        candidates = tuple(name for name, _ in ranked[:3])
        return Intent("unknown", confidence, merchant, start, end, candidates)
    if best != "transactions":
        merchant, start, end = None, None, None
    return Intent(best, round(confidence, 3), merchant, start, end)
