"""Does what a person typed name this merchant? Matched over display names at the broker, so the
platform needs no merchant list.

Three readings of the typed name, any of which may match:

* as written, forgiving typos and case ("tesco", "sainsburys" → "Sainsbury's");
* Polish inflection taken off ("w Biedronce" → Biedronka, "na Orlenie" → Orlen, "w Lidlu" → Lidl,
  "w Żabce" → Żabka): a case ending is removed, with the consonant it softened put back;
* another script transliterated (anyascii) and compared by consonant skeleton, since Arabic
  writes few vowels ("كارفور" → "krfwr" → "krfr", the skeleton of "Carrefour").
"""

from __future__ import annotations

import re
from functools import lru_cache

from anyascii import anyascii
from rapidfuzz import fuzz

FUZZY_MIN = 85  # rapidfuzz partial ratio for a typo to count
MIN_STEM = 3  # shorter stems match too much

# Polish case endings, longest first, each with what the stem ended in before it softened:
# "Biedronce" (locative of Biedronka) is "Biedronk" + "ce" → "k"; "Orlenie" is "Orlen" + "ie".
_POLISH_ENDINGS: tuple[tuple[str, str], ...] = (
    ("owi", ""),
    ("ach", ""),
    ("ami", ""),
    ("dze", "g"),
    ("rze", "r"),
    ("ce", "k"),
    ("ie", ""),
    ("em", ""),
    ("om", ""),
    ("ow", ""),
    ("ze", "g"),
    ("e", ""),
    ("u", ""),
    ("a", ""),
    ("i", ""),
    ("y", ""),
    ("ę", ""),
    ("ą", ""),
)
_NOT_LETTERS = re.compile(r"[^a-z0-9]+")
# letters an Arabic spelling of a Latin name has no way to tell apart, and the vowels (and the
# long-vowel letters w, y, h) it mostly leaves out
_SAME_SOUND = str.maketrans({"c": "k", "q": "k", "p": "b", "v": "f", "g": "j", "x": "k"})
_VOWELS = re.compile(r"[aeiouwyh']")
_DOUBLE = re.compile(r"(.)\1+")


def fold(text: str) -> str:
    """Lower-case ASCII letters and digits only: "Sainsbury's" → "sainsburys", "Żabka" → "zabka"."""
    return _NOT_LETTERS.sub("", anyascii(text).casefold())


def skeleton(text: str) -> str:
    """The consonants as an Arabic spelling keeps them: "Carrefour" and "كارفور" → "krfr"."""
    folded = fold(text).replace("ck", "k").replace("ph", "f")
    return _DOUBLE.sub(r"\1", _VOWELS.sub("", folded.translate(_SAME_SOUND)))


def polish_stems(word: str) -> tuple[str, ...]:
    """``word`` with each Polish case ending it may carry taken off (folded), longest first."""
    folded = anyascii(word).casefold()
    out = []
    for ending, restored in _POLISH_ENDINGS:
        plain = anyascii(ending)
        if folded.endswith(plain) and len(folded) - len(plain) + len(restored) >= MIN_STEM:
            out.append(fold(folded[: -len(plain)] + restored))
    return tuple(out)


def _latin(text: str) -> bool:
    return all(ord(c) < 0x250 for c in text if c.isalpha())


@lru_cache(maxsize=4096)
def merchant_matches(name: str, wanted: str) -> bool:
    """Whether ``wanted`` (as the person typed it, any script, any case) names ``name``."""
    wanted = wanted.strip()
    if not wanted or not name:
        return False
    if fuzz.partial_ratio(wanted.casefold(), name.casefold()) >= FUZZY_MIN:
        return True
    folded_name, folded_wanted = fold(name), fold(wanted)
    if len(folded_wanted) >= MIN_STEM and folded_wanted in folded_name:
        return True
    if not _latin(wanted):
        known = {skeleton(name), *(skeleton(w) for w in name.split())}
        bare = wanted[2:] if wanted.startswith("ال") else wanted  # "النهدي" is Nahdi
        for typed in {skeleton(wanted), skeleton(bare)}:
            if len(typed) >= 2 and (
                typed in known
                or (len(typed) >= 4 and any(fuzz.ratio(typed, k) >= FUZZY_MIN for k in known))
            ):
                return True
        return False
    words = wanted.split()
    first = words[0] if len(words) > 1 else wanted  # "Biedronce", "Marks & Spencer"
    rest = fold(" ".join(words[1:]))
    for stem in polish_stems(first):
        if folded_name.startswith(stem) and len(folded_name) - len(stem) <= 2:
            return not rest or rest in folded_name
    return False
