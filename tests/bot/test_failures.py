"""When something behind the bot fails, the user gets a clear, localized message within 5 s."""

from __future__ import annotations

import time
from datetime import timedelta

from consent.api.keys import BROKER
from consent.service.ratelimit import Limits, TokenBuckets
from tests.bot.system import ALICE, ZOFIA, System
from tests.bot.test_conversations import link_bank

WITHIN_S = 5.0


async def test_a_bank_that_fails_gets_a_clear_message(system: System) -> None:
    await link_bank(system, ALICE)
    resp = await system.env.bank.put("/sandbox/banks/northwind/faults", json={"error_rate": 1.0})
    assert resp.status == 200
    started = time.monotonic()
    reply = await system.say(ALICE, "/balance", lambda t: "Bank is not answering" in t)
    assert time.monotonic() - started < WITHIN_S
    assert "Northwind Bank" in reply["text"] and "try again" in reply["text"]


async def test_a_bank_that_hangs_is_answered_within_five_seconds(system: System) -> None:
    await link_bank(system, ALICE)
    await system.env.bank.put(
        "/sandbox/banks/northwind/faults", json={"timeout_rate": 1.0, "timeout_s": 30}
    )
    started = time.monotonic()
    reply = await system.say(ALICE, "/balance", lambda t: "⚠️" in t, wait_s=WITHIN_S + 1)
    assert time.monotonic() - started < WITHIN_S + 0.5
    assert "try again" in reply["text"].lower()


async def test_the_broker_being_down_gets_a_clear_message(system: System) -> None:
    await link_bank(system, ALICE)
    await system.env.broker.close()
    started = time.monotonic()
    reply = await system.say(ALICE, "/balance", lambda t: "can't reach" in t)
    assert time.monotonic() - started < WITHIN_S
    assert "try again" in reply["text"]


async def test_too_many_requests_get_the_wait_in_the_users_language(system: System) -> None:
    await link_bank(system, ZOFIA, "wisla")
    broker = system.env.broker.app[BROKER]
    assert broker.limits is not None
    broker.limits = Limits(subjects=TokenBuckets(1), clients=broker.limits.clients)
    await system.say(ZOFIA, "/balance", lambda t: "Wisła" in t)
    reply = await system.say(ZOFIA, "/balance", lambda t: "⚠️" in t)
    assert "sekund" in reply["text"]


async def test_an_expired_consent_says_link_again(system: System) -> None:
    await link_bank(system, ALICE)
    system.env.clock.now += timedelta(days=400)
    reply = await system.say(ALICE, "/transactions", lambda t: "/link" in t)
    assert "£" not in reply["text"]
