"""Times on the user's clock: /timezone takes an IANA name, a city in English, Polish or Arabic,
or an offset, remembers it, and every time the bot shows (alerts, "as of", receipts, when the
bank's staff will answer) is then on that clock; UTC until the user says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank_mock.keys import CLOCK
from bot import views
from bot.i18n import Tr, tr
from bot.zones import find_zone, suggest
from tests.bot.system import ALICE, OMAR, ZOFIA, System
from tests.bot.test_alerts_and_privacy import inject_fraud
from tests.bot.test_conversations import link_bank


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("Europe/Warsaw", "Europe/Warsaw"),
        ("europe/warsaw", "Europe/Warsaw"),
        ("Warsaw", "Europe/Warsaw"),
        ("Warszawa", "Europe/Warsaw"),
        ("Kraków", "Europe/Warsaw"),
        ("الرياض", "Asia/Riyadh"),
        ("new york", "America/New_York"),
        ("UTC", "UTC"),
        ("UTC+3", "Etc/GMT-3"),  # POSIX sign: three hours ahead of UTC
        ("-5", "Etc/GMT+5"),
    ],
)
def test_a_zone_from_what_people_type(text: str, zone: str) -> None:
    assert find_zone(text) == zone


@pytest.mark.parametrize("text", ["", "Atlantis", "+5:30", "UTC+99", "../../etc/passwd"])
def test_what_is_not_a_zone_is_refused(text: str) -> None:
    assert find_zone(text) is None


def test_a_typo_gets_suggestions() -> None:
    assert suggest("warsw") == ["Europe/Warsaw"]
    assert suggest("qqqqqq") == []


@given(st.text(max_size=40))
def test_any_text_is_a_known_zone_or_none(text: str) -> None:
    zone = find_zone(text)
    assert zone is None or Tr("en", zone).zone_name == zone


def test_as_of_and_moments_are_on_the_user_s_clock() -> None:
    read = datetime(2026, 12, 2, 22, 30, tzinfo=UTC)
    now = read + timedelta(minutes=5)
    # in Riyadh (UTC+3) that read was at 01:30 the next day: not "today" there any more
    assert views.as_of(tr("en"), read, now) == "22:30"
    assert views.as_of(tr("en", "Asia/Riyadh"), read, now) == "01:30"
    assert tr("en", "Asia/Riyadh").moment(read) == "03/12/2026, 01:30"
    assert tr("pl", "Europe/Warsaw").moment(read) == "2.12.2026, 23:30"
    assert "1:30" in tr("ar", "Asia/Riyadh").moment(read)
    # a naive time is UTC, as the broker sends it
    assert tr("en", "Asia/Riyadh").moment(read.replace(tzinfo=None)) == "03/12/2026, 01:30"


async def test_timezone_is_remembered_and_alerts_show_local_time(system: System) -> None:
    await system.say(ALICE, "/timezone", lambda t: "Times are shown in UTC" in t)
    await system.say(ALICE, "/timezone warsw", lambda t: "/timezone Europe/Warsaw" in t)
    await system.say(ALICE, "/timezone Riyadh", lambda t: "now shown in Asia/Riyadh" in t)
    await system.say(ALICE, "/timezone", lambda t: "Times are shown in Asia/Riyadh" in t)
    await link_bank(system, ALICE)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    booked_at = system.env.bank_app[CLOCK]()  # the bank's clock books the payment
    await inject_fraud(system)
    alert = await system.expect(ALICE, lambda t: "Was this you?" in t, before)
    riyadh = tr("en", "Asia/Riyadh").moment(booked_at)
    assert f"When: {riyadh}" in alert["text"], alert["text"]
    assert tr("en").moment(booked_at) != riyadh
    # quiet hours without a zone are on the user's clock too
    await system.say(
        ALICE, "/quiet 22:00-07:00", lambda t: "Quiet hours set" in t and "Riyadh" in t
    )
    await system.say(ALICE, "/timezone UTC", lambda t: "now shown in UTC" in t)


async def test_arabic_timezone_by_city_name(system: System) -> None:
    await system.say(OMAR, "/timezone دبي", lambda t: "Asia/Dubai" in t and "الأوقات" in t)
    await system.say(OMAR, "/timezone أتلانتس", lambda t: "لا أعرف" in t)


async def test_polish_timezone_by_city_name(system: System) -> None:
    await system.say(ZOFIA, "/timezone Kraków", lambda t: "Europe/Warsaw" in t and "Godziny" in t)
    await system.say(ZOFIA, "/timezone Warszwa", lambda t: "/timezone Europe/Warsaw" in t)
