"""The platform-layer promise, tested: after a whole scripted session (link, balance,
transactions, insights with a chart and top merchants, alert, freeze, revoke), nothing the bot
received from the broker, nothing it stored and no log line contains a raw value of the mock
bank's records."""

from __future__ import annotations

import logging
import sqlite3
from decimal import Decimal
from typing import Any

import pytest

from tests.bot.system import ALICE, Recorder, System, button
from tests.bot.test_alerts_and_privacy import alice_account, inject_fraud
from tests.bot.test_conversations import link_bank
from tests.consent.test_broker_flows import _raw_values


def _dump_sqlite(path: str) -> str:
    """Every value in every table of the bot's database, as text."""
    connection = sqlite3.connect(path)
    try:
        out = []
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - our own names
                out.append(" ".join(str(v) for v in row))
        return "\n".join(out)
    finally:
        connection.close()


async def test_nothing_the_bot_received_stored_or_logged_holds_a_raw_bank_field(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    logging.getLogger().addHandler(recorder)
    caplog.set_level(logging.DEBUG)
    try:
        await link_bank(system, ALICE)
        balances = await system.say(ALICE, "/balance", lambda t: "balances" in t.lower())
        page = await system.say(ALICE, "/transactions", lambda t: "Transactions" in t)
        await system.press(ALICE, page, "tx:next", lambda t: "Transactions" in t)
        chart = await system.say(
            ALICE, "/insights last month", lambda t: "Spending by category" in t, wait_s=20
        )
        await system.press(ALICE, chart, button(chart, "in:tm:"), lambda t: "Top merchants" in t)
        before = {m["message_id"] for m in await system.chat.messages(ALICE)}
        await inject_fraud(system)
        alert = await system.expect(ALICE, lambda t: "Was this you?" in t, before)
        await system.press(ALICE, alert, button(alert, "al:fz:"), lambda t: "frozen" in t)
        listing = await system.say(ALICE, "/consents", lambda t: "What you shared" in t)
        ask = await system.press(ALICE, listing, button(listing, "cs:rv:"), lambda t: "Revoke" in t)
        await system.press(ALICE, ask, button(ask, "cs:ok:"), lambda t: "Revoked" in t)
    finally:
        logging.getLogger().removeHandler(recorder)

    raw = await system.env.bank.get(
        f"/sandbox/banks/northwind/raw/accounts/{alice_account(system)}"
    )
    record: dict[str, Any] = await raw.json()
    secrets = _raw_values(record)
    assert len(secrets) > 50  # the scan has something to find

    received = "\n".join(body.decode() for _, body in system.received)
    stored = _dump_sqlite(str(system.bot_db))
    # the bank and the broker run in this process too; they are the bank side of the boundary
    # and log their own work. Everything else (the bot, PTB, httpx, aiohttp clients) is scanned.
    bank_side = ("bank_mock", "consent", "aiohttp.access")
    platform = [r for r in caplog.records if not r.name.startswith(bank_side)]
    logged = "\n".join(
        [line for line in recorder.lines if not line.startswith(bank_side)]
        + [r.getMessage() for r in platform]
    )
    assert "balances" in received and "transactions" in received  # it did receive views
    assert "previous_total" in received and "top_merchants" in received  # and insights
    assert stored and logged
    for where, text in (("received", received), ("stored", stored), ("logged", logged)):
        leaked = sorted(s for s in secrets if s in text)
        assert leaked == [], f"raw bank values {where}: {leaked[:5]}"

    # the bot keeps no financial value at all: none of the amounts it showed is in its database
    shown = [m["text"] for m in await system.chat.messages(ALICE) if m["from_bot"]]
    assert any("£" in t for t in shown)
    for line in received.split("\n"):
        for token in line.replace('"', " ").replace(",", " ").split():
            if token.count(".") == 1 and token.replace(".", "").replace("-", "").isdigit():
                value = Decimal(token)
                if value and abs(value) >= 10:
                    assert token not in stored, f"an amount ({token}) is in the bot's database"
    assert balances
