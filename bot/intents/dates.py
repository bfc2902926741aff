"""Periods in free text → an inclusive date range: named periods ("last month", "w zeszłym
miesiącu", "الشهر الماضي"), month names ("in March", "w marcu", "في مارس"), "last 30 days",
and explicit dates through dateparser ("since 3 March", "od 15.03.2026", "١٥ مارس")."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from functools import lru_cache

from dateparser.date import DateDataParser

MONTHS: dict[int, tuple[str, ...]] = {
    1: ("january", "jan", "styczen", "stycznia", "styczniu", "يناير", "كانون الثاني"),
    2: ("february", "feb", "luty", "lutego", "lutym", "فبراير", "شباط"),
    3: ("march", "mar", "marzec", "marca", "marcu", "مارس", "اذار"),
    4: ("april", "apr", "kwiecien", "kwietnia", "kwietniu", "ابريل", "نيسان"),
    5: ("may", "maj", "maja", "maju", "مايو", "ايار"),
    6: ("june", "jun", "czerwiec", "czerwca", "czerwcu", "يونيو", "حزيران"),
    7: ("july", "jul", "lipiec", "lipca", "lipcu", "يوليو", "تموز"),
    8: ("august", "aug", "sierpien", "sierpnia", "sierpniu", "اغسطس", "اب"),
    9: ("september", "sep", "sept", "wrzesien", "wrzesnia", "wrzesniu", "سبتمبر", "ايلول"),
    10: ("october", "oct", "pazdziernik", "pazdziernika", "pazdzierniku", "اكتوبر", "تشرين الاول"),
    11: ("november", "nov", "listopad", "listopada", "listopadzie", "نوفمبر", "تشرين الثاني"),
    12: ("december", "dec", "grudzien", "grudnia", "grudniu", "ديسمبر", "كانون الاول"),
}
_MONTH_OF = {name: n for n, names in MONTHS.items() for name in names}
# Short English forms only count as whole words after "in"/"since"/a number ("may" is a verb)
_AMBIGUOUS = {
    "may",
    "mar",
    "jan",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
    "feb",
    "apr",
    "sept",
    "اب",
}

PERIODS: dict[str, tuple[str, ...]] = {
    "today": ("today", "dzis", "dzisiaj", "اليوم", "النهارده", "هاليوم"),
    "yesterday": ("yesterday", "wczoraj", "امس", "البارحه", "امبارح", "مبارح", "بالامس"),
    "this_week": (
        "this week",
        "current week",
        "w tym tygodniu",
        "z tego tygodnia",
        "ten tydzien",
        "هذا الاسبوع",
        "هالاسبوع",
        "الاسبوع هذا",
        "الاسبوع ده",
        "الاسبوع الحالي",
    ),
    "last_week": (
        "last week",
        "past week",
        "w zeszlym tygodniu",
        "w poprzednim tygodniu",
        "ostatni tydzien",
        "w ostatnim tygodniu",
        "z zeszlego tygodnia",
        "z ostatniego tygodnia",
        "z poprzedniego tygodnia",
        "zeszly tydzien",
        "poprzedni tydzien",
        "previous week",
        "الاسبوع الماضي",
        "الاسبوع اللي فات",
        "الاسبوع الفايت",
        "الاسبوع السابق",
        "الاسبوع اللي راح",
    ),
    "this_month": (
        "this month",
        "w tym miesiacu",
        "ten miesiac",
        "z tego miesiaca",
        "current month",
        "w biezacym miesiacu",
        "biezacy miesiac",
        "هذا الشهر",
        "هالشهر",
        "الشهر هذا",
        "الشهر ده",
        "الشهر الحالي",
    ),
    "last_month": (
        "last month",
        "previous month",
        "w zeszlym miesiacu",
        "zeszly miesiac",
        "w poprzednim miesiacu",
        "poprzedni miesiac",
        "ostatni miesiac",
        "w ostatnim miesiacu",
        "z ostatniego miesiaca",
        "z zeszlego miesiaca",
        "z poprzedniego miesiaca",
        "الشهر الماضي",
        "الشهر اللي فات",
        "الشهر السابق",
        "الشهر الفايت",
        "الشهر اللي راح",
    ),
    "this_year": (
        "this year",
        "w tym roku",
        "z tego roku",
        "ten rok",
        "هذه السنه",
        "هذا العام",
        "هالسنه",
        "السنه هذي",
        "السنه دي",
    ),
    "last_year": (
        "last year",
        "w zeszlym roku",
        "w poprzednim roku",
        "previous year",
        "z zeszlego roku",
        "zeszly rok",
        "poprzedni rok",
        "السنه الماضيه",
        "العام الماضي",
        "السنه اللي فاتت",
        "السنه الفايته",
    ),
}
_LAST_N = re.compile(
    r"(?:last|past|previous|ostatni\w*|poprzedni\w*|اخر|خلال)\s+(\d{1,3})\s*"
    r"(days?|dni|dzien|يوم|ايام|weeks?|tygodni\w*|اسابيع|months?|miesi\w*|اشهر|شهور)"
)
_EXPLICIT = re.compile(
    r"\b(\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{1,2}\s+[^\W\d]+(?:\s+\d{4})?)"
)
_SINCE = ("since", "from", "after", "od", "منذ", "من")


def month_range(month: int, today: date) -> tuple[date, date]:
    """The most recent whole ``month`` not after today (this month: up to today)."""
    year = today.year if month <= today.month else today.year - 1
    end = date(year, month, calendar.monthrange(year, month)[1])
    return date(year, month, 1), min(end, today)


def _named(name: str, today: date) -> tuple[date, date]:
    if name == "today":
        return today, today
    if name == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if name == "this_week":
        return today - timedelta(days=today.weekday()), today
    if name == "last_week":
        start = today - timedelta(days=today.weekday() + 7)
        return start, start + timedelta(days=6)
    if name == "this_month":
        return today.replace(day=1), today
    if name == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    if name == "this_year":
        return date(today.year, 1, 1), today
    return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)


@lru_cache(maxsize=64)
def _parser(language: str, today: date) -> DateDataParser:
    """One parser per language and day (dateparser's set-up is the slow part)."""
    base = datetime(today.year, today.month, today.day)
    settings = {"PREFER_DATES_FROM": "past", "RELATIVE_BASE": base}
    return DateDataParser(languages=[language], settings=settings)


def _explicit(fragment: str, language: str, today: date) -> date | None:
    parser = _parser(language if language in ("en", "ar", "pl") else "en", today)
    try:
        found = parser.get_date_data(fragment).date_obj
    except (ValueError, OverflowError):  # "31.02.2026", "99/99/9999": not a date after all
        return None
    if found is None:
        return None
    day = found.date()
    # history is in the past: a future date ("29.02.2028") is a typo, not a question
    return None if day > today else day


def find_period(text: str, language: str, today: date) -> tuple[date | None, date | None, str]:
    """(start, end, the text with the period removed) from normalized ``text``."""
    padded = f" {text} "
    for name, phrases in PERIODS.items():
        for phrase in sorted(phrases, key=len, reverse=True):
            if f" {phrase} " in padded:
                start, end = _named(name, today)
                return start, end, padded.replace(f" {phrase} ", " ").strip()
    match = _LAST_N.search(text)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        days = (
            n * 7
            if unit[:2] in ("we", "ty", "اس")
            else n * 30
            if unit[:2] in ("mo", "mi", "اش", "شه")
            else n
        )
        rest = (text[: match.start()] + text[match.end() :]).strip()
        return today - timedelta(days=max(days, 1) - 1), today, rest
    match = _EXPLICIT.search(text)
    if match:
        fragment = match.group(1)
        words = fragment.split()
        if len(words) == 1 or words[1] in _MONTH_OF:
            day = _explicit(fragment, language, today)
            if day is not None:
                before = text[: match.start()].split()
                since = bool(before) and before[-1] in _SINCE
                rest = " ".join(before[:-1] if since else before) + " " + text[match.end() :]
                return day, today if since else day, rest.strip()
    tokens = text.split()
    for i, token in enumerate(tokens):
        pair = " ".join(tokens[i : i + 2])
        month, width = (_MONTH_OF[pair], 2) if pair in _MONTH_OF else (_MONTH_OF.get(token), 1)
        if month is None:
            continue
        if token in _AMBIGUOUS and (
            i == 0 or tokens[i - 1] not in ("in", "since", "for", "w", "في", "od")
        ):
            continue
        start, end = month_range(month, today)
        since = i > 0 and tokens[i - 1] in _SINCE
        if since:
            end = today
        return start, end, " ".join(tokens[: i - 1 if since else i] + tokens[i + width :])
    return None, None, text
