"""Real-time receipts end to end: a card payment booked at the bank reaches the chat (localchat)
as a short receipt, in the user's language; bursts bundle; pending payments that book or are
reversed edit their receipt; quiet hours hold receipts for one summary; the bot keeps none of it."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from datetime import timedelta
from typing import Any

import pytest

from bank_mock.fraud.publisher import PUBLISHER
from bank_mock.keys import BANKS
from tests.bot.system import ALICE, OMAR, ZOFIA, Recorder, System, button
from tests.bot.test_conversations import link_bank

# what a transaction keeps back from the platform (DESIGN.md): never in the bot's DB, logs or
# received payloads
RAW_FIELDS = (
    "raw_descriptor",
    "mcc",
    "TransactionInformation",
    "MerchantCategoryCode",
    "latitude",
    "longitude",
    "terminal_id",
    "TransactionReference",
    "balance_after",
    "AccountId",
)


def card_account(system: System, bank: str = "northwind", username: str = "demo1") -> str:
    state = system.env.bank_app[BANKS][bank]
    customer = state.customers_by_username[username]
    return next(a for a in customer.account_ids if state.accounts[a].card_ids)


async def pay(system: System, bank: str = "northwind", **order: Any) -> list[dict[str, Any]]:
    order.setdefault("username", "demo1")
    resp = await system.env.bank.post(f"/sandbox/banks/{bank}/payments", json=order)
    body: dict[str, Any] = await resp.json()
    assert resp.status == 201, body
    return list(body["payments"])


async def link_with_receipts(system: System, user: int, bank: str = "northwind") -> None:
    """/link with the receipts box ticked (the test helper's flow, pressing it on the way)."""
    original = system.press

    async def press(u: int, message: Any, data: str, expect: Any) -> Any:
        if data == "lk:next":  # tick receipts first: that edits only the keyboard
            assert button(message, "lk:rc")
            edits, mid = message["edit_count"], message["message_id"]
            await system.chat.press(u, mid, "lk:rc")
            messages = await system.chat.wait_for(
                u,
                lambda ms: any(m["message_id"] == mid and m["edit_count"] > edits for m in ms),
                timeout=10,
            )
            message = next(m for m in messages if m["message_id"] == mid)
            assert "✅ 🧾" in str(message["reply_markup"])
        return await original(u, message, data, expect)

    system.press = press  # type: ignore[method-assign,assignment]
    try:
        await link_bank(system, user, bank)
    finally:
        system.press = original  # type: ignore[method-assign]


async def test_a_card_payment_reaches_the_chat_as_a_receipt_within_two_seconds(
    system: System,
) -> None:
    await link_with_receipts(system, ALICE)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    started = time.monotonic()
    payment = (await pay(system, merchant="Pret A Manger", amount="4.20"))[0]
    receipt = await system.expect(ALICE, lambda t: "🧾" in t, before, wait_s=5)
    assert time.monotonic() - started < 2.0
    assert "Pret A Manger" in receipt["text"] and "£4.20" in receipt["text"]
    last4 = (
        system.env.bank_app[BANKS]["northwind"]
        .cards[system.env.bank_app[BANKS]["northwind"].accounts[payment["account_id"]].card_ids[0]]
        .pan[-4:]
    )
    assert last4 in receipt["text"] and "eating out" in receipt["text"]
    # exactly once: the next payment is a new message, the first is not repeated
    await pay(system, merchant="Tesco", amount="12.00")
    await system.expect(ALICE, lambda t: "Tesco" in t, before, wait_s=5)
    receipts = [m for m in await system.chat.messages(ALICE) if "🧾" in m["text"]]
    assert len(receipts) == 2


async def test_receipts_read_in_arabic_and_polish(system: System) -> None:
    await link_with_receipts(system, OMAR, "nakheel")
    await link_with_receipts(system, ZOFIA, "northwind")
    before_ar = {m["message_id"] for m in await system.chat.messages(OMAR)}
    before_pl = {m["message_id"] for m in await system.chat.messages(ZOFIA)}
    await pay(system, "nakheel", merchant="Carrefour", amount="35.50")
    await pay(system, "northwind", merchant="Biedronka", amount="23.99")
    ar = await system.expect(OMAR, lambda t: "Carrefour" in t, before_ar, wait_s=5)
    assert ar["text"].startswith("\u200f") and "لدى" in ar["text"]  # right to left, in Arabic
    pl = await system.expect(ZOFIA, lambda t: "Biedronka" in t, before_pl, wait_s=5)
    assert " w Biedronka" in pl["text"] and "23,99" in pl["text"]


async def test_receipts_are_opt_in(system: System) -> None:
    await link_bank(system, ALICE)  # receipts left unticked
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    await pay(system, merchant="Tesco", amount="3.00")
    await asyncio.sleep(1.5)
    assert not [m for m in await system.chat.messages(ALICE) if m["message_id"] not in before]
    # switched on later with /receipts: the next payment comes
    listing = await system.say(ALICE, "/receipts", lambda t: "Receipts" in t)
    account = card_account(system)
    assert "Everyday" in str(listing["reply_markup"])
    await system.chat.press(ALICE, listing["message_id"], button(listing, "rc:on:"))
    await system.chat.wait_for(
        ALICE, lambda ms: any("✅" in str(m["reply_markup"]) for m in ms), timeout=10
    )
    assert account
    await pay(system, merchant="Boots", amount="5.00")
    await system.expect(ALICE, lambda t: "Boots" in t and "🧾" in t, before, wait_s=5)


async def test_a_burst_bundles_and_a_pending_payment_edits_its_receipt(system: System) -> None:
    await link_with_receipts(system, ALICE)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    await pay(system, count=3)
    burst = await system.expect(ALICE, lambda t: "3 payments at" in t, before, wait_s=5)
    assert burst["text"].count("•") == 3
    pending = (await pay(system, merchant="Shell", amount="60.00", pending=True))[0]
    shown = await system.expect(ALICE, lambda t: "Shell" in t and "pending" in t, before, wait_s=5)
    resp = await system.env.bank.post(
        f"/sandbox/banks/northwind/payments/{pending['transaction_id']}/book"
    )
    assert resp.status == 200
    messages = await system.chat.wait_for(
        ALICE,
        lambda ms: any(
            m["message_id"] == shown["message_id"] and "pending" not in m["text"] for m in ms
        ),
        timeout=5,
    )
    edited = next(m for m in messages if m["message_id"] == shown["message_id"])
    assert "Shell" in edited["text"] and edited["edit_count"] >= 1
    other = (await pay(system, merchant="Tesco", amount="9.00", pending=True))[0]
    shown = await system.expect(ALICE, lambda t: "Tesco" in t and "pending" in t, before, wait_s=5)
    resp = await system.env.bank.post(
        f"/sandbox/banks/northwind/payments/{other['transaction_id']}/reverse"
    )
    assert resp.status == 200
    messages = await system.chat.wait_for(
        ALICE,
        lambda ms: any(
            m["message_id"] == shown["message_id"] and "reversed" in m["text"] for m in ms
        ),
        timeout=5,
    )
    again = await system.env.bank.post(
        f"/sandbox/banks/northwind/payments/{other['transaction_id']}/reverse"
    )
    assert again.status == 404  # reversed payments leave the statement


async def test_quiet_hours_hold_receipts_for_one_summary(system: System) -> None:
    await link_with_receipts(system, ALICE)
    # the test clock says 19:00 UTC
    await system.say(ALICE, "/quiet 18:00-23:00 UTC", lambda t: "Quiet hours set" in t)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    await pay(system, merchant="Tesco", amount="10.00")
    await pay(system, merchant="Boots", amount="2.50")
    await asyncio.sleep(1.5)
    assert not [m for m in await system.chat.messages(ALICE) if "🧾" in m["text"]]
    await system.say(ALICE, "/quiet off", lambda t: "Quiet hours are off" in t)
    summary = await system.expect(ALICE, lambda t: "quiet hours lasted" in t, before, wait_s=5)
    assert "2 payments" in summary["text"] and "£12.50" in summary["text"]
    assert "Tesco" in summary["text"] and "Boots" in summary["text"]


async def test_bad_quiet_hours_get_the_usage(system: System) -> None:
    await link_with_receipts(system, ALICE)
    await system.say(ALICE, "/quiet whenever", lambda t: "/quiet 22:00-07:00" in t)
    await system.say(ALICE, "/quiet 25:00-07:00", lambda t: "/quiet 22:00-07:00" in t)
    await system.say(ALICE, "/quiet 22:00-07:00 Mars/Olympus", lambda t: "/quiet 22:00-07:00" in t)


async def test_the_bot_keeps_no_receipt_value(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    logging.getLogger().addHandler(recorder)
    caplog.set_level(logging.DEBUG)
    try:
        await link_with_receipts(system, ALICE)
        before = {m["message_id"] for m in await system.chat.messages(ALICE)}
        payment = (await pay(system, merchant="Nando's", amount="31.40", pending=True))[0]
        shown = await system.expect(ALICE, lambda t: "Nando" in t, before, wait_s=5)
        resp = await system.env.bank.post(
            f"/sandbox/banks/northwind/payments/{payment['transaction_id']}/book"
        )
        assert resp.status == 200
        await system.chat.wait_for(
            ALICE,
            lambda ms: any(m["message_id"] == shown["message_id"] and m["edit_count"] for m in ms),
            timeout=5,
        )
    finally:
        logging.getLogger().removeHandler(recorder)
    # the bank and the broker run in this process too: they are the bank side of the boundary
    bank_side = ("bank_mock", "consent", "aiohttp.access")
    logged = "\n".join(
        [line for line in recorder.lines if not line.startswith(bank_side)]
        + [r.getMessage() for r in caplog.records if not r.name.startswith(bank_side)]
    )
    assert logged
    state = system.env.bank_app[BANKS]["northwind"]
    tx = state.find_added(payment["transaction_id"])
    assert tx is not None
    secrets = [
        tx.raw_descriptor,
        tx.transaction_id,
        tx.bank_reference,
        tx.terminal_id or "",
        state.cards[tx.card_id or ""].pan,
        payment["account_id"],
        "31.40",
        "Nando",
    ]
    with sqlite3.connect(system.bot_db) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(str(row) for t in tables for row in db.execute(f"SELECT * FROM {t}"))  # noqa: S608
    for value in secrets:
        assert value not in dump, value
    # (the display values may be logged by the broker's own database engine; the raw ones never)
    for value in secrets[:6]:
        assert value not in logged, value
    broker_db = system.env.broker_settings.database_url.split("///", 1)[1]
    with sqlite3.connect(broker_db) as db:
        pushed = [
            {"kind": kind, "data": json.loads(payload)}
            for kind, payload in db.execute("SELECT kind, payload FROM outbox")
        ]
    receipts = [p for p in pushed if p["kind"] == "receipt"]
    assert receipts
    for message in receipts:
        for view in message["data"]["receipts"]:
            assert set(view) <= {
                "receipt_id",
                "account_handle",
                "card_last4",
                "merchant",
                "amount",
                "currency",
                "category",
                "status",
                "time",
            }
        text = json.dumps(message)
        for value in (*secrets[:6], *RAW_FIELDS):
            assert value not in text, value


async def test_a_bank_that_stalls_on_the_fetch_delays_the_receipt_but_never_loses_it(
    system: System,
) -> None:
    await link_with_receipts(system, ALICE)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    stall = {"timeout_rate": 1.0, "timeout_s": 30.0}
    resp = await system.env.bank.put("/sandbox/banks/northwind/faults", json=stall)
    assert resp.status == 200
    await pay(system, merchant="Tesco", amount="7.77")
    await asyncio.sleep(1.0)
    assert not [m for m in await system.chat.messages(ALICE) if "Tesco" in m["text"]]
    resp = await system.env.bank.put("/sandbox/banks/northwind/faults", json={})
    assert resp.status == 200
    # the stalled fetch times out and backs off; once the clock passes the retry time, the
    # fetch is made again and the receipt comes
    async with asyncio.timeout(20):
        while not [m for m in await system.chat.messages(ALICE) if "Tesco" in m["text"]]:
            system.env.clock.now += timedelta(seconds=30)
            await asyncio.sleep(0.5)
    receipt = await system.expect(ALICE, lambda t: "Tesco" in t, before, wait_s=1)
    assert "£7.77" in receipt["text"]


async def test_a_replayed_bank_event_gives_one_receipt(system: System) -> None:
    await link_with_receipts(system, ALICE)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    publisher = system.env.bank_app[PUBLISHER]
    state = system.env.bank_app[BANKS]["northwind"]
    await pay(system, merchant="Boots", amount="3.33")
    await system.expect(ALICE, lambda t: "Boots" in t, before, wait_s=5)
    # the bank says again (new events, same change) that the account changed: nothing new
    for _ in range(3):
        publisher.transactions_changed(state, card_account(system), status_only=False)
    await asyncio.sleep(1.5)
    shown = [m for m in await system.chat.messages(ALICE) if "🧾" in m["text"]]
    assert len(shown) == 1


async def test_the_banks_payment_timer_sends_receipts_live(system: System) -> None:
    """``chatbank up --demo-payments``: the bank books on a watched account by itself."""
    from bank_mock.payments import _timer

    await link_with_receipts(system, ALICE)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    timer = asyncio.create_task(_timer(system.env.bank_app, 0.2))
    try:
        await system.expect(ALICE, lambda t: "🧾" in t, before, wait_s=8)
    finally:
        timer.cancel()


async def test_a_receipt_waits_for_a_bot_that_is_down_and_arrives_once(system: System) -> None:
    """The bot restarts (down while the receipt is pushed): the broker's outbox retries until
    the new process accepts it, and the chat shows it once."""
    from bot.runtime import BotRuntime

    await link_with_receipts(system, ALICE)
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    settings = system.runtime.settings
    await system.runtime.stop()
    await pay(system, merchant="Boots", amount="6.66")
    await asyncio.sleep(1.0)  # the relay tries, the bot's address refuses
    system.runtime = BotRuntime(settings, clock=system.env.clock)
    await system.runtime.start()
    async with asyncio.timeout(20):
        while not [m for m in await system.chat.messages(ALICE) if "Boots" in m["text"]]:
            system.env.clock.now += timedelta(seconds=5)  # past the relay's backoff
            await asyncio.sleep(0.3)
    await asyncio.sleep(1.0)
    shown = [m for m in await system.chat.messages(ALICE) if m["message_id"] not in before]
    assert len([m for m in shown if "Boots" in m["text"]]) == 1


async def test_help_lists_receipts_and_quiet_and_free_text_reaches_them(system: System) -> None:
    """/help names /receipts and /quiet in each language, and writing "turn on receipts" (in
    English, Arabic or Polish) opens /receipts."""
    checks = (
        (ALICE, "What I can do", "quiet hours for receipts"),
        (OMAR, "ما الذي أستطيع فعله", "ساعات الهدوء للإيصالات"),
        (ZOFIA, "Co potrafię", "godziny ciszy dla potwierdzeń"),
    )
    for user, heading, quiet_line in checks:

        def is_help(text: str, heading: str = heading) -> bool:
            return heading in text

        shown = await system.say(user, "/help", is_help)
        text = shown["text"]
        assert "/receipts" in text and "/quiet" in text and quiet_line in text, text
    await link_bank(system, ALICE)
    listing = await system.say(ALICE, "turn on receipts", lambda t: "Receipts" in t)
    assert button(listing, "rc:on:")  # an account to switch on, as /receipts shows it
    ar = await system.say(OMAR, "تفعيل الإيصالات", lambda t: "/link" in t)
    assert "لتصلك الإيصالات" in ar["text"]
    pl = await system.say(ZOFIA, "włącz potwierdzenia płatności", lambda t: "/link" in t)
    assert "potwierdzenia" in pl["text"]
