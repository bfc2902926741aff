"""The Arabic and Polish catalogs: complete, placeholders, markup and /commands intact, and
plural forms as CLDR says (Arabic six, Polish three)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from bot.i18n import LRI, PDI, tr

LOCALES = Path(__file__).resolve().parents[2] / "bot" / "locales"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
TAG = re.compile(r"</?([a-zA-Z]\w*)")
COMMAND = re.compile(r"(?<![<\w/])/[a-z_]+")
EMOJI = re.compile("[\u2600-\u27bf\U0001f000-\U0001faff]")
PLURAL_FORMS = {
    "ar": (
        "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : "
        "n%100>=11 ? 4 : 5);"
    ),
    "pl": "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
}
FORMS = {"ar": 6, "pl": 3}
# gettext index of each CLDR plural category, per the catalogs' Plural-Forms
INDEX = {
    "ar": {"zero": 0, "one": 1, "two": 2, "few": 3, "many": 4, "other": 5},
    "pl": {"one": 0, "few": 1, "many": 2, "other": 2},
}
# Arabic says "one day" and "two days" with the noun alone (يوم واحد, يومان), without a digit:
# only these forms may leave out %(n)s.
WORDED_FORMS = {"ar": {1, 2}, "pl": set()}


def catalog(language: str) -> Catalog:
    with (LOCALES / language / "LC_MESSAGES" / "bot.po").open("rb") as f:
        return read_po(f, locale=language)


def key(message: Message) -> str | tuple[str, ...]:
    return message.id if isinstance(message.id, str) else tuple(message.id)


def template_ids() -> set[str | tuple[str, ...]]:
    with (LOCALES / "bot.pot").open("rb") as f:
        return {key(m) for m in read_po(f) if m.id}


def forms(message: Message) -> list[str]:
    raw = message.string
    return [str(s) for s in raw] if isinstance(raw, tuple | list) else [str(raw)]


def messages(language: str) -> list[Message]:
    return [m for m in catalog(language) if m.id]


def source(message: Message) -> str:
    """The English text a translation must match: for plurals, the plural msgid."""
    return message.id if isinstance(message.id, str) else str(message.id[-1])


PLURAL_IDS = sorted(
    (m.id[0], m.id[1]) for m in messages("pl") if m.pluralizable and isinstance(m.id, tuple)
)


@pytest.mark.parametrize("language", ["ar", "pl"])
def test_header_is_ready_to_use(language: str) -> None:
    cat = catalog(language)
    assert not cat.fuzzy
    assert str(cat.locale) == language
    assert cat.num_plurals == FORMS[language]
    assert cat.plural_forms == PLURAL_FORMS[language]
    assert cat.last_translator and "chatbank" in cat.last_translator
    assert list(cat.check()) == []  # Babel's own checkers: python-format and plural counts


@pytest.mark.parametrize("language", ["ar", "pl"])
def test_every_message_is_translated_with_the_right_number_of_forms(language: str) -> None:
    found = messages(language)
    assert {key(m) for m in found} == template_ids()
    for message in found:
        assert not message.fuzzy, message.id
        strings = forms(message)
        assert len(strings) == (FORMS[language] if message.pluralizable else 1), message.id
        assert all(s.strip() for s in strings), message.id


@pytest.mark.parametrize("language", ["ar", "pl"])
def test_placeholders_markup_and_commands_survive_translation(language: str) -> None:
    for message in messages(language):
        english = source(message)
        wanted = set(PLACEHOLDER.findall(english))
        for index, text in enumerate(forms(message)):
            got = set(PLACEHOLDER.findall(text))
            if message.pluralizable and index in WORDED_FORMS[language]:
                assert got == wanted - {"n"}, (message.id, text)
            else:
                assert got == wanted, (message.id, text)
            assert Counter(TAG.findall(text)) == Counter(TAG.findall(english)), message.id
            assert Counter(COMMAND.findall(text)) == Counter(COMMAND.findall(english)), text
            assert text.count("chatbank") == english.count("chatbank"), text
            assert not EMOJI.search(text), text


@pytest.mark.parametrize("language", ["ar", "pl"])
def test_translations_are_not_left_in_english(language: str) -> None:
    for message in messages(language):
        english = source(message)
        for text in forms(message):
            # numbers-only texts aside, a translation never just repeats the English words
            assert PLACEHOLDER.sub("", text) != PLACEHOLDER.sub("", english), text
        if language == "ar":
            assert any("\u0600" <= c <= "\u06ff" for c in "".join(forms(message))), message.id


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["ar", "pl"]),
    st.sampled_from(PLURAL_IDS),
)
def test_plural_forms_follow_cldr(n: int, language: str, ids: tuple[str, str]) -> None:
    message = catalog(language)[ids[0]]
    assert message is not None
    index = INDEX[language][Locale.parse(language).plural_form(n)]
    expected = forms(message)[index]
    extra = {name: "X" for name in PLACEHOLDER.findall(ids[0]) if name != "n"}  # %(amount)s
    got = tr(language).n_(*ids, n, **extra)
    number = tr(language).number(n)
    assert got == expected % {"n": number, **extra}
    if index not in WORDED_FORMS[language]:
        assert number in got and number.strip(LRI + PDI) in got
    else:  # Arabic 1 and 2 are said in words: "one", or the dual ending
        assert n in (1, 2) and not any(c.isdigit() for c in got)


@pytest.mark.parametrize(
    ("language", "n", "text"),
    [
        ("ar", 0, f"{LRI}0{PDI} يوم"),
        ("ar", 1, "يوم واحد"),
        ("ar", 2, "يومان"),
        ("ar", 3, f"{LRI}3{PDI} أيام"),
        ("ar", 10, f"{LRI}10{PDI} أيام"),
        ("ar", 11, f"{LRI}11{PDI} يومًا"),
        ("ar", 99, f"{LRI}99{PDI} يومًا"),
        ("ar", 100, f"{LRI}100{PDI} يوم"),
        ("ar", 103, f"{LRI}103{PDI} أيام"),
        ("pl", 1, "1 dzień"),
        ("pl", 2, "2 dni"),
        ("pl", 5, "5 dni"),
        ("pl", 12, "12 dni"),
        ("pl", 22, "22 dni"),
    ],
)
def test_days_read_naturally(language: str, n: int, text: str) -> None:
    assert tr(language).n_("%(n)s day", "%(n)s days", n) == text


@pytest.mark.parametrize(
    ("n", "entries", "seconds"),
    [
        (1, "1 wpis", "1 sekundę"),
        (3, "3 wpisy", "3 sekundy"),
        (5, "5 wpisów", "5 sekund"),
        (12, "12 wpisów", "12 sekund"),
        (24, "24 wpisy", "24 sekundy"),
    ],
)
def test_polish_entries_and_seconds(n: int, entries: str, seconds: str) -> None:
    pl = tr("pl")
    entry = "Integrity verified: %(n)s entry, unbroken chain."
    many = "Integrity verified: %(n)s entries, unbroken chain."
    assert f": {entries}," in pl.n_(entry, many, n)
    second = "That's a lot of requests. Try again in %(n)s second."
    assert pl.n_(second, second.replace("second.", "seconds."), n).endswith(f"za {seconds}.")


def test_each_language_reads_as_itself() -> None:
    assert tr("pl")._("I will speak English with you now.") == "Od teraz mówię po polsku."
    assert tr("ar")._("I will speak English with you now.") == "سأتحدث معك بالعربية من الآن."
    assert tr("ar")._("<b>Welcome to chatbank.</b>") == "<b>مرحبًا بك في chatbank.</b>"
    assert tr("en")._("I will speak English with you now.") == "I will speak English with you now."
