"""Fraud alerts, consent notices, /consents and /privacy, end to end."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from bank_mock.keys import BANKS
from tests.bot.system import ALICE, OMAR, System, button, buttons
from tests.bot.test_conversations import link_bank


def alice_account(system: System, bank: str = "northwind", username: str = "demo1") -> str:
    customer = system.env.bank_app[BANKS][bank].customers_by_username[username]
    return str(customer.account_ids[0])


async def inject_fraud(
    system: System, bank: str = "northwind", amount: str = "2750.00", merchant: str = "Luxe Watches"
) -> dict[str, Any]:
    resp = await system.env.bank.post(
        f"/sandbox/banks/{bank}/transactions",
        json={
            "account_id": alice_account(system, bank),
            "amount": amount,
            "currency": "EUR",
            "merchant_name": merchant,
            "country": "FR",
        },
    )
    body: dict[str, Any] = await resp.json()
    assert resp.status in (200, 201) and body["alerts"], body
    return body


async def test_fraud_alert_arrives_and_freezing_the_card_edits_it_once(system: System) -> None:
    await link_bank(system, ALICE)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    answer = await inject_fraud(system)
    assert answer["notified_apps"]  # `chatbank demo fraud` can say someone will see it
    alert = await system.expect(ALICE, lambda t: "Was this you?" in t, before)
    assert "Luxe Watches" in alert["text"] and "£" in alert["text"]  # in the card's currency
    freeze = button(alert, "al:fz:")
    assert button(alert, "al:me:")
    # a double tap: both presses reach the bot before the message changes
    await asyncio.gather(
        system.chat.press(ALICE, alert["message_id"], freeze),
        system.chat.press(ALICE, alert["message_id"], freeze),
    )
    messages = await system.chat.wait_for(
        ALICE, lambda ms: any("frozen" in m["text"] for m in ms), timeout=10
    )
    done = next(m for m in messages if m["message_id"] == alert["message_id"])
    assert "frozen" in done["text"]
    assert "Luxe Watches" in done["text"] and "£" in done["text"]  # the story stays
    assert [b["callback_data"][:6] for b in buttons(done)] == ["al:uf:"]
    assert not any("already answered" in m["text"] for m in messages)
    async with asyncio.timeout(10):  # every press is acknowledged, the double tap's too
        while len(await system.chat.callback_answers()) < 4 + 2:  # noqa: ASYNC110 - polls HTTP
            await asyncio.sleep(0.05)


async def test_a_replayed_delivery_does_not_show_the_alert_twice(system: System) -> None:
    await link_bank(system, ALICE)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    await inject_fraud(system)
    await system.expect(ALICE, lambda t: "Was this you?" in t, before)
    shown = system.runtime.events.shown if system.runtime.events else 0
    await inject_fraud(system, amount="2760.00", merchant="Gold Bazaar")
    await system.expect(ALICE, lambda t: "Was this you?" in t and "Gold Bazaar" in t, before)
    alerts = [m for m in await system.chat.messages(ALICE) if "Was this you" in m["text"]]
    assert len(alerts) == 2
    assert system.runtime.events is not None and system.runtime.events.shown == shown + 1


async def test_revoking_from_consents_asks_first_then_revokes(system: System) -> None:
    await link_bank(system, ALICE)
    listing = await system.say(ALICE, "/consents", lambda t: "What you shared" in t)
    assert "Northwind" in listing["text"]
    ask = await system.press(ALICE, listing, button(listing, "cs:rv:"), lambda t: "Revoke" in t)
    kept = await system.press(ALICE, ask, "cs:keep", lambda t: "What you shared" in t)
    ask = await system.press(ALICE, kept, button(kept, "cs:rv:"), lambda t: "Revoke" in t)
    done = await system.press(ALICE, ask, button(ask, "cs:ok:"), lambda t: "Revoked" in t)
    assert done["message_id"] == listing["message_id"]
    ended = await system.say(ALICE, "/balance", lambda t: "link" in t)
    assert "£" not in ended["text"]


async def test_revocation_at_the_bank_is_told_to_the_user(system: System) -> None:
    await link_bank(system, ALICE)
    consents = await system.env.broker.get(
        f"/v1/subjects/{await subject_of(system, ALICE)}/consents", headers=system.env.auth()
    )
    consent = (await consents.json())["consents"][0]
    export = await system.env.broker.get(
        f"/v1/subjects/{await subject_of(system, ALICE)}/export", headers=system.env.auth()
    )
    assert export.status == 200
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    resp = await system.env.bank.get("/sandbox/banks/northwind/customers")
    assert resp.status == 200
    bank_consent = await bank_consent_id(system, consent["consent_id"])
    revoke = await system.env.bank.post(f"/sandbox/banks/northwind/consents/{bank_consent}/revoke")
    assert revoke.status in (200, 204), await revoke.text()
    notice = await system.expect(ALICE, lambda t: "has ended" in t, before)
    assert "Northwind" in notice["text"]


async def subject_of(system: System, user: int) -> str:
    from bot.store import repo
    from bot.store.db import make_engine, session_factory

    engine = make_engine(system.runtime.settings.database_url)
    try:
        row = await repo.get_user(session_factory(engine), user)
    finally:
        await engine.dispose()
    assert row is not None and row.subject_id is not None
    return row.subject_id


async def bank_consent_id(system: System, consent_id: str) -> str:
    from sqlmodel import select

    from consent.api.keys import BROKER
    from consent.store.tables import ConsentRow

    broker = system.env.broker.app[BROKER]
    async with broker.sessions() as session:
        row = (
            await session.exec(select(ConsentRow).where(ConsentRow.consent_id == consent_id))
        ).one()
        assert row.bank_consent_id
        return str(row.bank_consent_id)


async def test_privacy_shows_handles_the_verified_access_log_export_and_delete(
    system: System,
) -> None:
    await link_bank(system, ALICE)
    await system.say(ALICE, "/balance", lambda t: "balances" in t.lower())
    page = await system.say(ALICE, "/privacy", lambda t: "What I hold" in t)
    subject = await subject_of(system, ALICE)
    assert subject in page["text"]
    log = await system.press(ALICE, page, "pv:log", lambda t: "Access log" in t)
    assert "Integrity verified" in log["text"] and "balances read" in log["text"]
    export = await system.press(ALICE, page, "pv:export", lambda t: "in this file" in t)
    assert "1 bank link" in export["text"] and "access log entries" in export["text"]
    document = export["document"]
    assert document["file_name"] == "chatbank-export.json"
    assert document["mime_type"] == "application/json"
    exported = json.loads(await system.chat.file(document["file_id"]))
    assert exported["bot"]["subject_id"] == subject == exported["broker"]["subject_id"]
    assert [c["bank_id"] for c in exported["broker"]["consents"]] == ["northwind"]
    chat = await system.chat.messages(ALICE)
    assert not any("<pre>" in m["text"] for m in chat)  # no raw JSON bubbles
    ask = await system.press(ALICE, page, "pv:del", lambda t: "Delete everything" in t)
    await system.press(ALICE, ask, "pv:delok", lambda t: "forgot you" in t)
    from bot.store import repo
    from bot.store.db import make_engine, session_factory

    engine = make_engine(system.runtime.settings.database_url)
    try:
        assert await repo.get_user(session_factory(engine), ALICE) is None
    finally:
        await engine.dispose()
    gone = await system.env.broker.get(
        f"/v1/subjects/{subject}/consents", headers=system.env.auth()
    )
    assert gone.status == 404


async def test_arabic_alert_is_right_to_left_with_isolated_amount(system: System) -> None:
    await link_bank(system, OMAR, "nakheel")
    before = {m["message_id"] for m in await system.chat.messages(OMAR)}
    customer = system.env.bank_app[BANKS]["nakheel"].customers_by_username["demo1"]
    resp = await system.env.bank.post(
        "/sandbox/banks/nakheel/transactions",
        json={
            "account_id": customer.account_ids[0],
            "amount": "9999.00",
            "currency": "EUR",
            "merchant_name": "Luxe Watches",
            "country": "FR",
        },
    )
    assert (await resp.json())["alerts"]
    alert = await system.expect(OMAR, lambda t: "Luxe Watches" in t, before)
    assert alert["text"].startswith("\u200f")
    assert "\u2066Luxe Watches\u2069" in alert["text"]


async def test_expiry_is_announced_a_week_ahead_with_renew_then_when_it_ends(
    system: System,
) -> None:
    from consent.api.keys import BROKER
    from consent.service.lifecycle import sweep

    await link_bank(system, ALICE, days=90)
    broker = system.env.broker.app[BROKER]
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    system.env.clock.now += timedelta(days=84)
    await sweep(broker)
    notice = await system.expect(ALICE, lambda t: "ends in" in t, before)
    assert "Northwind" in notice["text"] and "day" in notice["text"]
    renew = await system.press(ALICE, notice, "rn:northwind", lambda t: "what may I see" in t)
    assert button(renew, "lk:next")
    await system.say(ALICE, "/cancel", lambda t: "Cancelled" in t)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    system.env.clock.now += timedelta(days=7)
    await sweep(broker)
    expired = await system.expect(ALICE, lambda t: "expired" in t, before)
    assert "/link" in expired["text"]


async def test_old_de_duplication_ids_are_pruned_by_the_hourly_job(system: System) -> None:
    from bot.store import repo
    from bot.store.db import make_engine, session_factory

    application = system.runtime.application
    assert application is not None and application.job_queue is not None
    (job,) = application.job_queue.get_jobs_by_name("prune")
    engine = make_engine(system.runtime.settings.database_url)
    sessions = session_factory(engine)
    now = int(system.env.clock().timestamp())
    try:
        assert await repo.first_time(sessions, "delivery:old", now - 8 * 24 * 3600)
        assert await repo.first_time(sessions, "delivery:new", now - 3600)
        await job.run(application)
        assert await repo.first_time(sessions, "delivery:old", now)  # forgotten
        assert not await repo.first_time(sessions, "delivery:new", now)  # kept
    finally:
        await engine.dispose()
