"""The broker's side of real-time receipts: the settings routes, the bank event → fetch →
minimized, sealed receipt → outbox path, shredding, and the pure pieces (minimizer, quiet
hours, totals) as properties."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank_mock.keys import BANKS
from consent.domain.minimize import receipt_fields, receipt_view
from consent.domain.views import RECEIPT_FIELDS, TRANSACTION_FIELDS
from consent.receipts.choices import is_quiet
from consent.receipts.worker import totals
from consent.store.tables import QuietHours
from tests.consent.broker_env import Env, start, stop

RAW_TX: dict[str, Any] = {
    "AccountId": "nwc000001a01",
    "TransactionId": "nwc000001a01p0123456789",
    "TransactionReference": "CPREF12345",
    "CreditDebitIndicator": "Debit",
    "Status": "Pending",
    "BookingDateTime": "2026-11-20T19:00:00+00:00",
    "Amount": {"Amount": "4.20", "Currency": "GBP"},
    "TransactionInformation": "PRET A MANGER 4411 LONDON",
    "Balance": {"Amount": {"Amount": "1234.56", "Currency": "GBP"}},
    "MerchantDetails": {"MerchantName": "Pret A Manger", "MerchantCategoryCode": "5814"},
    "CardInstrument": {"CardSchemeName": "VISA", "Identification": "4929123456781234"},
    "CreditorAccount": {"Identification": "40051512345678"},
}


@pytest.fixture
async def env(tmp_path: Path, sqlite_url: str) -> Any:
    e = await start(tmp_path, sqlite_url, receipt_bundle_s=0.05, receipt_idle_s=0.2)
    yield e
    await stop(e)


def _db(env: Env) -> str:
    return env.broker_settings.database_url.split("///", 1)[1]


def _rows(env: Env, sql: str) -> list[Any]:
    with sqlite3.connect(_db(env)) as db:
        return list(db.execute(sql).fetchall())


async def _link(
    env: Env, receipts: bool = True, *, subject: str | None = None, bank: str = "northwind"
) -> tuple[str, str]:
    subject = subject or await env.subject()
    resp = await env.broker.post(
        f"/v1/subjects/{subject}/consents",
        json={"bank_id": bank, "scopes": ["balances", "transactions"], "receipts": receipts},
        headers=env.auth(),
    )
    assert resp.status == 201, await resp.text()
    started = await resp.json()
    from yarl import URL

    url = URL(started["authorization_url"])
    approve = await env.bank.post(
        f"/sandbox/banks/{bank}/consents/{url.query['consent_id']}/approve",
        json={
            "username": "demo1",
            "redirect_uri": url.query["redirect_uri"],
            "code_challenge": url.query["code_challenge"],
            "scopes": url.query["scope"].split(),
        },
    )
    code = (await approve.json())["code"]
    landing = await env.broker.get(
        f"/callback/{bank}", params={"state": url.query["state"], "code": code}
    )
    assert landing.status == 200
    return subject, str(started["consent_id"])


async def _pay(env: Env, bank: str = "northwind", **order: Any) -> list[dict[str, Any]]:
    resp = await env.bank.post(
        f"/sandbox/banks/{bank}/payments", json={"username": "demo1", **order}
    )
    assert resp.status == 201, await resp.text()
    return list((await resp.json())["payments"])


async def _outbox_receipts(env: Env, count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(10):
        while True:
            rows = _rows(
                env, "SELECT payload FROM outbox WHERE kind = 'receipt' ORDER BY created_at"
            )
            if len(rows) >= count:
                return [json.loads(r[0]) for r in rows]
            await asyncio.sleep(0.05)


async def test_receipts_need_the_transactions_scope(env: Env) -> None:
    subject = await env.subject()
    resp = await env.broker.post(
        f"/v1/subjects/{subject}/consents",
        json={"bank_id": "northwind", "scopes": ["balances"], "receipts": True},
        headers=env.auth(),
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "receipts_need_transactions"


async def test_a_booked_payment_becomes_a_minimized_sealed_receipt_in_the_outbox(
    env: Env,
) -> None:
    subject, consent = await _link(env)
    payment = (await _pay(env, merchant="Tesco", amount="12.34"))[0]
    message = (await _outbox_receipts(env, 1))[0]
    [view] = message["receipts"]
    assert set(view) == RECEIPT_FIELDS
    assert (view["merchant"], view["amount"], view["currency"]) == ("Tesco", "12.34", "GBP")
    assert view["status"] == "booked" and view["category"] == "groceries"
    text = json.dumps(message)
    state = env.bank_app[BANKS]["northwind"]
    tx = state.find_added(payment["transaction_id"])
    assert tx is not None
    for raw in (tx.transaction_id, tx.account_id, tx.raw_descriptor, tx.bank_reference, "5411"):
        assert raw not in text
    # sealed at rest: the receipt row holds no readable value
    [(blob,)] = _rows(env, "SELECT blob FROM receipt")
    assert b"Tesco" not in blob and b"12.34" not in blob
    log = _rows(env, "SELECT action, scope, outcome FROM audit_entry WHERE action LIKE 'push.%'")
    assert ("push.receipt", "transactions", "allowed") in log
    # revoking shreds the receipts with the consent's key
    resp = await env.broker.delete(f"/v1/subjects/{subject}/consents/{consent}", headers=env.auth())
    assert resp.status == 200
    assert _rows(env, "SELECT count(*) FROM receipt") == [(0,)]


async def test_receipts_stay_off_unless_chosen_and_turn_on_per_account(env: Env) -> None:
    subject, _ = await _link(env, receipts=False)
    await _pay(env, merchant="Tesco", amount="1.00")
    await asyncio.sleep(0.6)
    assert _rows(env, "SELECT count(*) FROM outbox WHERE kind = 'receipt'") == [(0,)]
    got = await env.broker.get(f"/v1/subjects/{subject}/receipts", headers=env.auth())
    settings = await got.json()
    assert settings["consents"][0]["enabled"] is False and settings["quiet_hours"] is None
    state = env.bank_app[BANKS]["northwind"]
    card_account = next(
        a for a in state.customers_by_username["demo1"].account_ids if state.accounts[a].card_ids
    )
    handles = [a["account_handle"] for a in settings["accounts"]]
    assert handles  # the event made the account's handle
    env.clock.now += timedelta(minutes=1)  # payments before turning receipts on get none
    for handle in handles:
        resp = await env.broker.put(
            f"/v1/subjects/{subject}/accounts/{handle}/receipts",
            json={"enabled": True},
            headers=env.auth(),
        )
        assert resp.status == 200 and (await resp.json())["enabled"] is True
    await _pay(env, merchant="Boots", amount="2.00")
    message = (await _outbox_receipts(env, 1))[0]
    assert [v["merchant"] for v in message["receipts"]] == ["Boots"]  # Tesco was not opted in
    assert card_account not in json.dumps(message)
    actions = [r[0] for r in _rows(env, "SELECT action FROM audit_entry")]
    assert "receipts.on" in actions


async def test_bad_settings_are_refused_with_typed_errors(env: Env) -> None:
    subject, _ = await _link(env)
    base = f"/v1/subjects/{subject}/receipts/quiet-hours"
    cases = [
        ({"start": "22:00", "end": "22:00"}, "invalid_time"),
        ({"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}, "invalid_timezone"),
        ({"start": "24:00", "end": "07:00"}, "invalid_request"),
        ({"start": "22:00"}, "invalid_request"),
    ]
    for body, code in cases:
        resp = await env.broker.put(base, json=body, headers=env.auth())
        assert resp.status == 400, body
        assert (await resp.json())["error"] == code, body
    resp = await env.broker.put(
        f"/v1/subjects/{subject}/accounts/acc_nope/receipts",
        json={"enabled": True},
        headers=env.auth(),
    )
    assert resp.status == 404
    ok = await env.broker.put(
        base,
        json={"start": "22:00", "end": "07:00", "timezone": "Europe/Warsaw"},
        headers=env.auth(),
    )
    assert (await ok.json())["quiet_hours"] == {
        "start": "22:00",
        "end": "07:00",
        "timezone": "Europe/Warsaw",
    }
    export = await (
        await env.broker.get(f"/v1/subjects/{subject}/export", headers=env.auth())
    ).json()
    assert export["receipts"]["quiet_hours"]["timezone"] == "Europe/Warsaw"
    assert [c["account"] for c in export["receipts"]["choices"]] == ["*"]
    off = await env.broker.delete(base, headers=env.auth())
    assert off.status == 200 and (await off.json())["quiet_hours"] is None


async def test_a_bank_error_on_the_fetch_is_retried_until_the_receipt_goes_out(env: Env) -> None:
    await _link(env)
    resp = await env.bank.put("/sandbox/banks/northwind/faults", json={"error_rate": 1.0})
    assert resp.status == 200
    await _pay(env, merchant="Shell", amount="50.00")
    await asyncio.sleep(0.6)
    assert _rows(env, "SELECT attempts FROM receipt_work")[0][0] >= 1  # kept, backed off
    assert _rows(env, "SELECT count(*) FROM outbox WHERE kind = 'receipt'") == [(0,)]
    await env.bank.put("/sandbox/banks/northwind/faults", json={})
    env.clock.now += timedelta(minutes=5)
    message = (await _outbox_receipts(env, 1))[0]
    assert message["receipts"][0]["merchant"] == "Shell"
    assert _rows(env, "SELECT count(*) FROM receipt_work") == [(0,)]


async def _until(env: Env, sql: str, done: Callable[[list[Any]], bool]) -> list[Any]:
    """The rows of ``sql`` once ``done`` says so (10 s at most)."""
    async with asyncio.timeout(10):
        for _ in itertools.count():
            rows = _rows(env, sql)
            if done(rows):
                return rows
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


async def test_a_summary_edit_shows_every_consents_receipts(env: Env) -> None:
    """Quiet hours held a payment at each of two banks (two consents, one summary); when the
    pending one books, the summary is edited as a whole: both receipts, count and totals."""
    subject, _ = await _link(env)
    await _link(env, subject=subject, bank="nakheel")
    now = env.clock.now
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    resp = await env.broker.put(
        f"/v1/subjects/{subject}/receipts/quiet-hours", json=quiet, headers=env.auth()
    )
    assert resp.status == 200, await resp.text()
    env.clock.now += timedelta(minutes=1)
    pending = (await _pay(env, merchant="Tesco", amount="3.00", pending=True))[0]
    await _pay(env, "nakheel", merchant="Carrefour", amount="35.50")
    held = "SELECT count(*) FROM receipt WHERE message_key IS NULL"
    await _until(env, held, lambda rows: rows == [(2,)])
    env.clock.now += timedelta(hours=2)
    messages = "SELECT kind, payload FROM outbox WHERE kind LIKE 'receipt%' ORDER BY created_at"
    [(kind, raw)] = await _until(env, messages, bool)
    first = json.loads(raw)
    assert kind == "receipt_summary" and first["count"] == 2 and first["edit"] is False
    resp = await env.bank.post(
        f"/sandbox/banks/northwind/payments/{pending['transaction_id']}/book"
    )
    assert resp.status == 200, await resp.text()
    rows = await _until(env, messages, lambda rows: len(rows) >= 2)
    assert [k for k, _ in rows] == ["receipt_summary", "receipt_summary"]
    edit = json.loads(rows[1][1])
    assert edit["edit"] is True and edit["message"] == first["message"]
    by_merchant = {v["merchant"]: v for v in edit["receipts"]}
    assert set(by_merchant) == {"Tesco", "Carrefour"}  # both consents' parts
    assert by_merchant["Tesco"]["status"] == "booked"
    assert edit["count"] == 2
    assert edit["totals"] == first["totals"] and len(edit["totals"]) == 2


# --- the pure pieces ------------------------------------------------------------------------

_TEXT = st.text(max_size=30)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@given(
    extra=st.dictionaries(_TEXT, _JSON, max_size=6),
    fields=st.sets(st.sampled_from(sorted(TRANSACTION_FIELDS))),
)
def test_a_receipt_never_carries_more_than_its_allow_list(
    extra: dict[str, Any], fields: set[str]
) -> None:
    tx = {**extra, **RAW_TX}
    allowed = receipt_fields(frozenset(fields))
    view = receipt_view(
        tx, receipt_id="rct_x", account_handle="acc_x", status="pending", fields=allowed
    )
    assert set(view) <= RECEIPT_FIELDS & allowed
    text = json.dumps(view)
    for raw in ("PRET A MANGER 4411", "CPREF12345", "1234.56", "40051512345678", "4929123456"):
        assert raw not in text
    assert "5814" not in text and "nwc000001a01" not in text


def test_the_receipt_time_is_utc_to_the_second() -> None:
    tx = {**RAW_TX, "BookingDateTime": "2026-11-20T21:00:05+02:00"}
    view = receipt_view(
        tx, receipt_id="r", account_handle="a", status="booked", fields=RECEIPT_FIELDS
    )
    assert view["time"] == "2026-11-20T19:00:05+00:00"
    assert view["card_last4"] == "1234" and view["category"] == "eating_out"


@given(
    start=st.integers(0, 1439),
    end=st.integers(0, 1439),
    minute=st.integers(0, 1439),
)
def test_quiet_hours_hold_exactly_the_minutes_between_start_and_end(
    start: int, end: int, minute: int
) -> None:
    quiet = QuietHours(subject_id="s", start_minute=start, end_minute=end, timezone="UTC")
    now = datetime(2026, 11, 20, tzinfo=UTC) + timedelta(minutes=minute)
    if start == end:
        expected = False
    elif start < end:
        expected = start <= minute < end
    else:  # across midnight
        expected = minute >= start or minute < end
    assert is_quiet(quiet, now) is expected


def test_quiet_hours_follow_the_users_zone() -> None:
    quiet = QuietHours(
        subject_id="s", start_minute=22 * 60, end_minute=7 * 60, timezone="Asia/Riyadh"
    )
    assert is_quiet(quiet, datetime(2026, 11, 20, 20, 0, tzinfo=UTC))  # 23:00 in Riyadh
    assert not is_quiet(quiet, datetime(2026, 11, 20, 18, 0, tzinfo=UTC))  # 21:00 in Riyadh


@given(st.lists(st.decimals(min_value=0, max_value=10**6, places=2), max_size=20))
def test_summary_totals_add_up_in_decimal_and_leave_reversed_out(amounts: list[Decimal]) -> None:
    views: list[dict[str, Any]] = [
        {"amount": str(a), "currency": "GBP", "status": "reversed" if i % 3 == 2 else "booked"}
        for i, a in enumerate(amounts)
    ]
    kept = [a for i, a in enumerate(amounts) if i % 3 != 2]
    got = totals(views)
    if kept:
        assert Decimal(got["GBP"]) == sum(kept, Decimal(0))
    else:
        assert got == {}


async def test_receipts_flow_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """The same event → fetch → sealed receipt → outbox path on PostgreSQL, then shredding."""
    from sqlalchemy import text

    from consent.api.keys import BROKER

    env = await start(tmp_path, postgres_url, receipt_bundle_s=0.05, receipt_idle_s=0.2)
    try:
        subject, consent = await _link(env)
        await _pay(env, merchant="Tesco", amount="3.21", pending=True)
        engine = env.broker.app[BROKER].engine

        async def scalar(sql: str) -> Any:
            async with engine.connect() as conn:
                return (await conn.execute(text(sql))).scalar()

        async with asyncio.timeout(10):
            while not await scalar(  # noqa: ASYNC110 - polls the database
                "SELECT count(*) FROM outbox WHERE kind = 'receipt'"
            ):
                await asyncio.sleep(0.05)
        payload = json.loads(await scalar("SELECT payload FROM outbox WHERE kind = 'receipt'"))
        assert payload["receipts"][0]["status"] == "pending"
        assert await scalar("SELECT status FROM receipt") == "pending"
        resp = await env.broker.delete(
            f"/v1/subjects/{subject}/consents/{consent}", headers=env.auth()
        )
        assert resp.status == 200
        assert await scalar("SELECT count(*) FROM receipt") == 0
    finally:
        await stop(env)


async def test_two_broker_processes_on_postgresql_share_the_receipt_work(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two brokers (each its own engine and worker) on one PostgreSQL database: each account's
    fetch is claimed by one of them (one receipt per payment, one bank call), and the held
    receipts of quiet hours go out as exactly one summary."""
    from aiohttp.test_utils import TestClient, TestServer
    from sqlalchemy import text

    from consent.api.keys import BROKER
    from consent.app import create_app
    from consent.receipts.worker import ReceiptWorker
    from tests.consent.broker_env import free_port

    async def idle(self: ReceiptWorker) -> None:
        await asyncio.Event().wait()  # the apps' own workers stand by: the test drives two

    monkeypatch.setattr(ReceiptWorker, "run_forever", idle)
    env = await start(tmp_path, postgres_url, receipt_bundle_s=0, receipt_idle_s=60)
    port = free_port()
    settings = env.broker_settings.model_copy(update={"port": port})
    other = TestClient(TestServer(create_app(settings, clock=env.clock, migrate=False), port=port))
    await other.start_server()
    try:
        brokers = [env.broker.app[BROKER], other.app[BROKER]]
        workers = [ReceiptWorker(b, lambda: None) for b in brokers]
        fetches = [0, 0]
        for i, worker in enumerate(workers):
            real = worker._fetch

            async def counted(*args: Any, _i: int = i, _real: Any = real) -> Any:
                fetches[_i] += 1
                return await _real(*args)

            monkeypatch.setattr(worker, "_fetch", counted)
        engine = brokers[0].engine

        async def scalar(sql: str) -> Any:
            async with engine.connect() as conn:
                return (await conn.execute(text(sql))).scalar()

        async def marked() -> None:
            async with asyncio.timeout(10):
                while not await scalar("SELECT count(*) FROM receipt_work"):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

        subject, _ = await _link(env)
        # each fetch takes half a second: both workers look for due work while one fetches
        await env.bank.put("/sandbox/banks/northwind/faults", json={"latency_ms": 500})
        await _pay(env, merchant="Tesco", amount="4.10")
        await marked()
        await asyncio.gather(*(w.run_once() for w in workers))
        assert sum(fetches) == 1, fetches  # one process did the account's work
        assert await scalar("SELECT count(*) FROM outbox WHERE kind = 'receipt'") == 1
        assert await scalar("SELECT count(*) FROM receipt") == 1
        assert await scalar("SELECT count(*) FROM receipt_work") == 0

        # a process that stalls past its lease loses the work: the new claimant sends the
        # receipt, and the stalled one, when its fetch returns, writes nothing
        await _pay(env, merchant="Boots", amount="1.50")
        await marked()
        before = list(fetches)  # either worker may have done the first account's work
        stalled = asyncio.create_task(workers[0].run_once())
        async with asyncio.timeout(10):
            while fetches[0] == before[0]:  # noqa: ASYNC110 - waits for the fetch to start
                await asyncio.sleep(0.01)
        env.clock.now += timedelta(minutes=1)  # past the lease (the bank token still good)
        assert await workers[1].run_once() == 1
        assert await stalled == 0
        assert fetches == [before[0] + 1, before[1] + 1], (before, fetches)
        assert await scalar("SELECT count(*) FROM outbox WHERE kind = 'receipt'") == 2
        assert await scalar("SELECT count(*) FROM receipt_work") == 0

        # quiet hours now: three payments are held, then summed up once when they end
        now = env.clock.now
        quiet = {
            "start": (now - timedelta(hours=1)).strftime("%H:%M"),
            "end": (now + timedelta(hours=1)).strftime("%H:%M"),
            "timezone": "UTC",
        }
        resp = await env.broker.put(
            f"/v1/subjects/{subject}/receipts/quiet-hours", json=quiet, headers=env.auth()
        )
        assert resp.status == 200, await resp.text()
        env.clock.now += timedelta(minutes=1)
        await _pay(env, merchant="Boots", amount="2.00", count=3)
        await marked()
        await asyncio.gather(*(w.run_once() for w in workers))
        assert sum(fetches) == 4, fetches
        held = "SELECT count(*) FROM receipt WHERE message_key IS NULL"
        assert await scalar(held) == 3
        env.clock.now += timedelta(hours=2)
        # a process in the middle of the summary holds the receipts: the other sends nothing
        # (and does not wait for it)
        async with engine.connect() as conn:
            await conn.execute(
                text("SELECT receipt_id FROM receipt WHERE message_key IS NULL FOR UPDATE")
            )
            async with asyncio.timeout(5):
                assert await workers[1].release_held() == 0
            await conn.rollback()
        sent = await asyncio.gather(*(w.release_held() for w in workers))
        assert sorted(sent) == [0, 1]
        summaries = "SELECT payload FROM outbox WHERE kind = 'receipt_summary'"
        async with engine.connect() as conn:
            payloads = [json.loads(r[0]) for r in (await conn.execute(text(summaries))).all()]
        assert len(payloads) == 1
        assert payloads[0]["count"] == 3 and payloads[0]["totals"] == {"GBP": "6.00"}
        assert await scalar(held) == 0
        assert await scalar("SELECT count(*) FROM outbox WHERE kind = 'receipt'") == 2
    finally:
        await other.close()
        await stop(env)
