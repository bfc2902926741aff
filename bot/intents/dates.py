"""Periods in free text → an inclusive date range: named periods ("last month", "w zeszłym
miesiącu", "الشهر الماضي"), month names with or without a year ("in March", "marzec 2025",
"في مارس ٢٠٢٥"), a year ("in 2025", "w 2025", "في ٢٠٢٥"), "last 30 days", explicit dates
through dateparser ("since 3 March", "od 15.03.2026", "١٥ مارس") and ranges of them ("from 1 to
15 March", "2025-03-01 to 2025-03-31", "od 1.03 do 15.03.2026", "من ١ مارس إلى ١٥ مارس").

A period is never in the future: history is in the past, so a range ends today at the latest and
a date without a year is the most recent one (a range's start is the most recent one before its
end)."""

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
_MONTH_NAMES = "|".join(sorted((re.escape(n) for n in _MONTH_OF), key=len, reverse=True))
_DATE = (
    r"\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}(?:[./]\d{2,4})?"
    rf"|\d{{1,2}}\s+[^\W\d]+(?:\s+\d{{4}})?|(?:{_MONTH_NAMES})\s+\d{{1,2}}(?:\s+\d{{4}})?"
)
# "from A to B", "between A and B", "od A do B", "من A الى B", "بين A و B", "A-B"; A may be a
# bare day ("1 to 15 march") that takes B's month and year
_RANGE = re.compile(
    r"(?:\b(?:from|between|od|pomiedzy|miedzy|من|بين|منذ)\s+)?"
    rf"\b(?P<a>{_DATE}|\d{{1,2}})"
    r"(?:\s+(?:to|until|till|through|and|do|a|الى|الي|حتى|لغايه|لحد|و)\s+|-)"
    rf"(?P<b>{_DATE})\b"
)
_YEAR_WORDS = (
    "in",
    "for",
    "during",
    "since",
    "from",
    "w",
    "za",
    "od",
    "roku",
    "rok",
    "في",
    "خلال",
    "عام",
    "سنه",
    "منذ",
    "من",
)
_YEAR = re.compile(
    r"(?:^|\s)(?P<word>" + "|".join(_YEAR_WORDS) + r")\s+(?P<year>(?:19|20)\d{2})(?!\S)"
)  # a year standing alone: "since 2026-12-05" is a date, not "since 2026"


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


def _is_date(fragment: str) -> bool:
    """A fragment a date can be read from: digits with separators, or a day and a month name."""
    words = fragment.split()
    if len(words) == 1:
        return not fragment.isdigit()
    return words[1] in _MONTH_OF or words[0] in _MONTH_OF


def _has_year(fragment: str) -> bool:
    return re.search(r"\d{4}|[./]\d{1,2}[./]\d{2}", fragment) is not None


def _range(text: str, language: str, today: date) -> tuple[date, date, str] | None:
    """A range of two dates in ``text``: (start, end, the text without it)."""
    for match in _RANGE.finditer(text):
        left, right = match.group("a"), match.group("b")
        if not _is_date(right) or not (left.isdigit() or _is_date(left)):
            continue
        end = _explicit(right, language, today)
        if end is None:
            continue
        if left.isdigit():
            try:
                start = end.replace(day=int(left))
            except ValueError:  # "31 to 15 feb"
                continue
        else:
            found = _explicit(left, language, today)
            if found is None:
                continue
            start = found
            # a start without a year is the most recent one not after the end ("1 Dec to 15 Dec"
            # asked on 2 December means last December)
            if not _has_year(left) and start > end:
                try:
                    start = start.replace(year=start.year - 1)
                except ValueError:  # 29 February
                    start = start.replace(year=start.year - 1, day=28)
        if start > end:
            start, end = end, start
        rest = (text[: match.start()] + " " + text[match.end() :]).split()
        return start, min(end, today), " ".join(rest)
    return None


def _year(year: int, today: date) -> tuple[date, date] | None:
    if year > today.year:
        return None
    return date(year, 1, 1), min(date(year, 12, 31), today)


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
    ranged = _range(text, language, today)
    if ranged is not None:
        return ranged
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
        after = tokens[i + width] if i + width < len(tokens) else ""
        if re.fullmatch(r"(?:19|20)\d{2}", after):  # "march 2025", "marzec 2025", "مارس 2025"
            year = int(after)
            width += 1
            if (year, month) > (today.year, today.month):
                continue  # a month to come holds no history
            last = calendar.monthrange(year, month)[1]
            start, end = date(year, month, 1), min(date(year, month, last), today)
        else:
            start, end = month_range(month, today)
        since = i > 0 and tokens[i - 1] in _SINCE
        if since:
            end = today
        return start, end, " ".join(tokens[: i - 1 if since else i] + tokens[i + width :])
    match = _YEAR.search(text)
    if match:
        whole = _year(int(match.group("year")), today)
        if whole is not None:
            start, end = whole
            if match.group("word") in _SINCE:
                end = today
            left = (text[: match.start()] + " " + text[match.end() :]).split()
            return start, end, " ".join(left)
    return None, None, text
