"""A time zone from what a user types after /timezone: an IANA name in any case
("europe/warsaw"), a city in English, Polish or Arabic ("Warsaw", "Warszawa", "الرياض"), UTC or
an offset ("UTC+3", "+05:30")."""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import available_timezones

from rapidfuzz import fuzz, process

from bot.intents.normalize import normalize

# Cities people write in their own language (normalized as bot.intents.normalize does)
LOCAL_NAMES = {
    "warszawa": "Europe/Warsaw",
    "krakow": "Europe/Warsaw",
    "gdansk": "Europe/Warsaw",
    "wroclaw": "Europe/Warsaw",
    "poznan": "Europe/Warsaw",
    "lodz": "Europe/Warsaw",
    "polska": "Europe/Warsaw",
    "poland": "Europe/Warsaw",
    "londyn": "Europe/London",
    "uk": "Europe/London",
    "wielka brytania": "Europe/London",
    "manchester": "Europe/London",
    "edinburgh": "Europe/London",
    "الرياض": "Asia/Riyadh",
    "جده": "Asia/Riyadh",
    "مكه": "Asia/Riyadh",
    "السعوديه": "Asia/Riyadh",
    "دبي": "Asia/Dubai",
    "ابوظبي": "Asia/Dubai",
    "ابو ظبي": "Asia/Dubai",
    "الامارات": "Asia/Dubai",
    "القاهره": "Africa/Cairo",
    "مصر": "Africa/Cairo",
    "عمان": "Asia/Amman",
    "الاردن": "Asia/Amman",
    "بيروت": "Asia/Beirut",
    "لبنان": "Asia/Beirut",
    "الكويت": "Asia/Kuwait",
    "الدوحه": "Asia/Qatar",
    "قطر": "Asia/Qatar",
    "المنامه": "Asia/Bahrain",
    "البحرين": "Asia/Bahrain",
    "مسقط": "Asia/Muscat",
    "بغداد": "Asia/Baghdad",
    "دمشق": "Asia/Damascus",
    "الدار البيضاء": "Africa/Casablanca",
    "الرباط": "Africa/Casablanca",
    "تونس": "Africa/Tunis",
    "الجزاير": "Africa/Algiers",
    "لندن": "Europe/London",
    "وارسو": "Europe/Warsaw",
}
_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?(00|30|45))?$")
_SKIP = ("Etc/", "SystemV/", "US/", "Canada/", "Brazil/", "Chile/", "Mexico/")


@lru_cache(maxsize=1)
def _names() -> tuple[dict[str, str], dict[str, str]]:
    """(lower-case IANA name → name, city → name) for this machine's zone database."""
    zones = {z for z in available_timezones() if "/" in z and not z.startswith(_SKIP)}
    exact = {z.lower(): z for z in available_timezones()}
    cities: dict[str, str] = {}
    for zone in sorted(zones, key=lambda z: (z.count("/"), z)):
        city = normalize(zone.rsplit("/", 1)[1].replace("_", " "))
        cities.setdefault(city, zone)
    cities.update(LOCAL_NAMES)
    return exact, cities


def find_zone(text: str) -> str | None:
    """The IANA name ``text`` means, or None."""
    raw = text.strip()
    if not raw:
        return None
    exact, cities = _names()
    if raw.lower() in ("utc", "gmt", "z", "zulu"):
        return "UTC"
    if raw.lower() in exact:
        return exact[raw.lower()]
    offset = _OFFSET.match(raw.lower().replace(" ", ""))
    if offset:
        sign, hours, minutes = offset.group(1), int(offset.group(2)), offset.group(3) or "00"
        if minutes != "00" or hours > 14:
            return None  # Etc/GMT zones are whole hours; say a city instead
        if hours == 0:
            return "UTC"
        # POSIX signs: Etc/GMT-3 is three hours *ahead* of UTC
        name = f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
        return name if name.lower() in exact else None
    return cities.get(normalize(raw))


def suggest(text: str, limit: int = 3) -> list[str]:
    """Zones whose city reads like ``text`` ("warsw" → Europe/Warsaw)."""
    _, cities = _names()
    found = process.extract(normalize(text), list(cities), scorer=fuzz.WRatio, limit=limit * 3)
    out: list[str] = []
    for city, score, _ in found:
        zone = cities[city]
        if score >= 80 and zone not in out:
            out.append(zone)
    return out[:limit]
