"""The webhook's reads and writes on PostgreSQL (bot.store.pgwrite): the same rows and outcomes
as the async store, a replay writes nothing, and "sent" committed by another process while a
claim waited is seen before the message would be sent again. Skipped without
CHATBANK_TEST_POSTGRES_URL (see tests/consent/conftest.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.store import deliveries, repo
from bot.store.db import make_engine, session_factory, upgrade_async
from bot.store.deliveries import Claim
from bot.store.pgwrite import PgDeliveries, postgres_dsn
from bot.store.tables import ChatUser


@pytest.fixture
async def fast(postgres_url: str) -> AsyncIterator[PgDeliveries]:
    await upgrade_async(postgres_url)
    dsn = postgres_dsn(postgres_url)
    assert dsn is not None
    store = PgDeliveries(dsn)
    yield store
    await store.close()


def test_only_postgresql_urls_get_a_dsn() -> None:
    assert postgres_dsn("sqlite+aiosqlite:///data/bot.db") is None
    assert postgres_dsn("sqlite:///:memory:") is None
    assert postgres_dsn("postgresql+asyncpg://u:p@h:5432/db") == "postgresql://u:p@h:5432/db"
    assert postgres_dsn("postgresql://u@h/db") == "postgresql://u@h/db"


async def test_same_rows_and_outcomes_as_the_async_store(
    fast: PgDeliveries, postgres_url: str
) -> None:
    assert await fast.first_time_and_claim("nonce:a", "pc:msg_1", 100, 30) is Claim.CLAIMED
    # a replayed nonce claims nothing, whatever delivery it names
    assert await fast.first_time_and_claim("nonce:a", "pc:msg_2", 100, 30) is None
    engine = make_engine(postgres_url)
    sessions = session_factory(engine)
    try:
        # the async store sees the same rows: msg_2 is free, msg_1 is held
        assert await deliveries.claim(sessions, "pc:msg_2", 100, 30) is Claim.CLAIMED
        assert await deliveries.claim(sessions, "pc:msg_1", 101, 30) is Claim.BUSY
        assert await fast.first_time_and_claim("nonce:b", "pc:msg_1", 101, 30) is Claim.BUSY
        await fast.mark_sent("pc:msg_1", 102, "pc:fa-1")
        assert await deliveries.alert_shown(sessions, "pc:fa-1")
        assert await deliveries.claim(sessions, "pc:msg_1", 103, 30) is Claim.SENT
        assert await fast.first_time_and_claim("nonce:c", "pc:msg_1", 104, 30) is Claim.SENT
        # a claim older than the lease (its process died) is taken over
        assert await fast.first_time_and_claim("nonce:d", "pc:msg_2", 200, 30) is Claim.CLAIMED
        assert await fast.first_time("nonce:d", 200) is False
        assert await fast.first_time("nonce:e", 200) is True
        assert not await repo.first_time(sessions, "nonce:e", 200)
        # "sent" without an alert; the async store's mark_sent is read back here
        await fast.mark_sent("pc:msg_2", 201)
        assert await deliveries.claim(sessions, "pc:msg_2", 202, 30) is Claim.SENT
        assert await deliveries.claim(sessions, "pc:msg_3", 202, 30) is Claim.CLAIMED
        await deliveries.mark_sent(sessions, "pc:msg_3", 203, "pc:fa-3")
        assert await fast.first_time_and_claim("nonce:f", "pc:msg_3", 204, 30) is Claim.SENT
        found = await fast.look("pc:msg_4", "pc:fa-3", "subject-x")
        assert (found.sent, found.alert_shown, found.user) == (False, True, None)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(postgres_dsn(postgres_url))
    try:
        keys = {r["id"] for r in await conn.fetch("SELECT id FROM seen_deliveries")}
    finally:
        await conn.close()
    assert keys == {
        *(f"nonce:{n}" for n in "abcdef"),
        "sent:pc:msg_1",
        "sent:pc:msg_2",
        "sent:pc:msg_3",
        "alert:pc:fa-1",
        "alert:pc:fa-3",
    }


async def test_look_reads_the_user_and_the_alert(fast: PgDeliveries, postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        user = ChatUser(
            telegram_user_id=7, chat_id=70, subject_id="sub-7", language="pl", time_zone="UTC"
        )
        await repo.save_user(session_factory(engine), user)
    finally:
        await engine.dispose()
    await fast.open()  # as the bot does at start-up; the first statement connects otherwise
    assert await fast.first_time_and_claim("nonce:a", "pc:msg_1", 100, 30) is Claim.CLAIMED
    found = await fast.look("pc:msg_1", "pc:fa-1", "sub-7")
    assert not found.sent and not found.alert_shown
    assert found.user is not None
    assert (found.user.telegram_user_id, found.user.chat_id, found.user.language) == (7, 70, "pl")
    assert (found.user.subject_id, found.user.time_zone) == ("sub-7", "UTC")
    assert (await fast.look("pc:msg_1", None, "sub-unknown")).user is None


async def _marking_sent(other: asyncpg.Connection, scoped: str) -> Any:
    """Another process marking ``scoped`` sent: its claim dropped and "sent" written, not yet
    committed (commit the transaction returned)."""
    marking = other.transaction()
    await marking.start()
    await other.execute("DELETE FROM seen_deliveries WHERE id = $1", f"pending:{scoped}")
    await other.execute(
        "INSERT INTO seen_deliveries (id, seen_at) VALUES ($1, 101)", f"sent:{scoped}"
    )
    return marking


async def test_sent_committed_while_the_claim_waited_is_seen_before_sending(
    fast: PgDeliveries, postgres_url: str
) -> None:
    """Another process marks the delivery sent (dropping its claim) while our claim's statement
    waits on that claim's row: the statement began before "sent" was committed, so it claims;
    the look that must follow sees "sent" and drops the claim again."""
    assert await fast.first_time_and_claim("nonce:a", "pc:msg_1", 100, 30) is Claim.CLAIMED
    other = await asyncpg.connect(postgres_dsn(postgres_url))
    try:
        marking = await _marking_sent(other, "pc:msg_1")
        claim = asyncio.create_task(fast.first_time_and_claim("nonce:b", "pc:msg_1", 101, 30))
        await asyncio.sleep(0.3)
        assert not claim.done()  # waiting on the row the other transaction deletes
        await marking.commit()
        assert await claim is Claim.CLAIMED  # its snapshot predates "sent"
        found = await fast.look("pc:msg_1", None, "sub-7")
        assert found.sent
        rows = await other.fetch("SELECT id FROM seen_deliveries WHERE id LIKE '%msg_1'")
        assert {r["id"] for r in rows} == {"sent:pc:msg_1"}  # the claim is dropped again
    finally:
        await other.close()


async def test_a_database_restart_costs_at_most_one_failed_call_per_pooled_connection(
    fast: PgDeliveries, postgres_url: str
) -> None:
    """Every backend terminated (a PostgreSQL restart): a call on a dead pooled connection fails
    (the webhook answers 500 and the broker's relay retries), the pool replaces it, and within
    pool-size calls the store works again with nothing half-written."""
    assert await fast.first_time_and_claim("nonce:r1", "pc:msg_r1", 100, 30) is Claim.CLAIMED
    dsn = postgres_dsn(postgres_url)
    assert dsn is not None
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    failures = 0
    for attempt in range(fast.pool_size + 2):
        try:
            claimed = await fast.first_time_and_claim(f"nonce:r2-{attempt}", "pc:msg_r2", 101, 30)
        except (
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            # the terminated backend's socket closing while the call starts on it: asyncpg's
            # protocol refuses the call ("another operation is in progress"), then drops it
            asyncpg.InternalClientError,
            ConnectionError,
            OSError,
        ):
            failures += 1
            continue
        assert claimed is Claim.CLAIMED
        break
    else:
        pytest.fail("the store never recovered from the restart")
    assert failures <= fast.pool_size
    await fast.mark_sent("pc:msg_r2", 102)
    assert await fast.first_time_and_claim("nonce:r3", "pc:msg_r2", 103, 30) is Claim.SENT
    # the delivery claimed before the restart is still held, not lost or marked sent
    assert await fast.first_time_and_claim("nonce:r4", "pc:msg_r1", 104, 30) is Claim.BUSY


async def test_claims_looks_and_sents_made_side_by_side_go_in_a_few_statements(
    fast: PgDeliveries, postgres_url: str
) -> None:
    """A batch's messages claim, look and mark "sent" side by side: grouped, a few statements
    carry them all, with each message's own outcome (a delivery sent before, one claimed by a
    live process, the same delivery twice in one group)."""
    await fast.open()
    engine = make_engine(postgres_url)
    try:
        sessions = session_factory(engine)
        await repo.save_user(
            sessions,
            ChatUser(telegram_user_id=9, chat_id=90, subject_id="sub-9", language="en"),
        )
        assert await deliveries.claim(sessions, "pc:held", 100, 30) is Claim.CLAIMED
        assert await deliveries.claim(sessions, "pc:done", 100, 30) is Claim.CLAIMED
        await deliveries.mark_sent(sessions, "pc:done", 100, "pc:fa-done")
    finally:
        await engine.dispose()
    ids = [f"pc:m{i}" for i in range(40)]
    claims = await asyncio.gather(
        *(fast.claim(i, 110, 30) for i in [*ids, "pc:held", "pc:done", "pc:m0"])
    )
    assert claims[:40] == [Claim.CLAIMED] * 40
    assert claims[40:] == [Claim.BUSY, Claim.SENT, Claim.BUSY]  # m0 twice: the second is busy
    looks = await asyncio.gather(
        *(fast.look(i, f"pc:fa-{i}", "sub-9" if n % 2 else "sub-none") for n, i in enumerate(ids)),
        fast.look("pc:x", "pc:fa-done", "sub-9"),
    )
    assert [f.user is not None for f in looks[:40]] == [n % 2 == 1 for n in range(40)]
    assert all(not f.sent and not f.alert_shown for f in looks[:40])
    assert looks[1].user is not None and looks[1].user.chat_id == 90
    assert looks[40].alert_shown
    # two deliveries carrying one alert (m39 carries m0's): its key is recorded once
    await asyncio.gather(
        *(fast.mark_sent(i, 120, f"pc:fa-{i[3:]}") for i in ids[:39]),
        fast.mark_sent(ids[39], 121, "pc:fa-m0"),
    )
    groups = fast.groups
    assert groups["claim"].calls == 43 and groups["claim"].statements <= 3
    assert groups["look"].calls == 41 and groups["look"].statements <= 3
    assert groups["sent"].calls == 40 and groups["sent"].statements <= 3
    again = await asyncio.gather(*(fast.claim(i, 130, 30) for i in ids))
    assert again == [Claim.SENT] * 40
    conn = await asyncpg.connect(postgres_dsn(postgres_url))
    try:
        keys = {r["id"] for r in await conn.fetch("SELECT id FROM seen_deliveries")}
    finally:
        await conn.close()
    assert not {k for k in keys if k.startswith("pending:pc:m")}  # every claim dropped
    assert {f"sent:{i}" for i in ids} <= keys
    assert {f"alert:pc:fa-m{n}" for n in range(39)} <= keys and "alert:pc:fa-m39" not in keys


async def test_a_claim_past_its_lease_is_taken_over_in_a_group(fast: PgDeliveries) -> None:
    assert await fast.claim("pc:a", 100, 30) is Claim.CLAIMED
    assert await fast.claim("pc:b", 100, 30) is Claim.CLAIMED
    # pc:a's process died long ago (past the lease); pc:b's claim is fresh
    got = await asyncio.gather(fast.claim("pc:a", 200, 30), fast.claim("pc:b", 101, 30))
    assert list(got) == [Claim.CLAIMED, Claim.BUSY]


async def test_a_grouped_statement_that_fails_fails_each_caller(fast: PgDeliveries) -> None:
    await fast.open()
    await fast.close()
    fast.dsn = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens there
    got = await asyncio.gather(
        *(fast.claim(f"pc:{i}", 100, 30) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(g, OSError) for g in got)
    # and the next call is tried again, not left waiting
    with pytest.raises(OSError, match=r"Connect call failed|refused"):
        await asyncio.wait_for(fast.claim("pc:9", 100, 30), 10)


async def test_sent_committed_while_a_grouped_claim_waited_is_seen_before_sending(
    fast: PgDeliveries, postgres_url: str
) -> None:
    """As above, for the grouped claim of a batch's messages."""
    assert await fast.claim("pc:msg_1", 100, 30) is Claim.CLAIMED
    other = await asyncpg.connect(postgres_dsn(postgres_url))
    try:
        marking = await _marking_sent(other, "pc:msg_1")
        claims = asyncio.gather(fast.claim("pc:msg_1", 101, 30), fast.claim("pc:msg_2", 101, 30))
        await asyncio.sleep(0.3)
        assert not claims.done()
        await marking.commit()
        assert list(await claims) == [Claim.CLAIMED, Claim.CLAIMED]
        found = await asyncio.gather(
            fast.look("pc:msg_1", None, "s"), fast.look("pc:msg_2", None, "s")
        )
        assert [f.sent for f in found] == [True, False]
        rows = await other.fetch("SELECT id FROM seen_deliveries WHERE id LIKE '%msg_%'")
        assert {r["id"] for r in rows} == {"sent:pc:msg_1", "pending:pc:msg_2"}
    finally:
        await other.close()


KEYS = ["pc:a", "pc:b", "pc:c", "pc:d"]
LEASE = 30
# a delivery's state before the group: nothing, a claim of a live process, a claim whose process
# died (older than the lease), sent
STATES = st.sampled_from(["none", "held", "stale", "sent"])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # each example starts afresh
)
@given(
    before=st.fixed_dictionaries({k: STATES for k in KEYS}),
    calls=st.lists(st.sampled_from(KEYS), min_size=1, max_size=12),
)
async def test_a_group_of_claims_answers_as_the_same_claims_one_by_one(
    fast: PgDeliveries, before: dict[str, str], calls: list[str]
) -> None:
    """Whatever the rows and however many claims (the same delivery several times, too), the
    grouped claims give each caller what it would get from the same claims made one after
    another, and leave the rows the same."""
    now = 1000
    seen = {"held": now - 5, "stale": now - LEASE - 1}
    pool = await fast._connection_pool()
    await pool.execute("DELETE FROM seen_deliveries")
    for key, state in before.items():
        if state in seen:
            await pool.execute(
                "INSERT INTO seen_deliveries VALUES ($1, $2)", f"pending:{key}", seen[state]
            )
        elif state == "sent":
            await pool.execute("INSERT INTO seen_deliveries VALUES ($1, 1)", f"sent:{key}")
    # one by one, as a model: sent stays sent; a claim that is not past its lease is busy
    pending = {k: seen[s] for k, s in before.items() if s in seen}
    expected = []
    for key in calls:
        if before[key] == "sent":
            expected.append(Claim.SENT)
        elif key in pending and pending[key] > now - LEASE:
            expected.append(Claim.BUSY)
        else:
            pending[key] = now
            expected.append(Claim.CLAIMED)
    got = await asyncio.gather(*(fast.claim(key, now, LEASE) for key in calls))
    assert list(got) == expected
    rows = {r["id"]: r["seen_at"] for r in await pool.fetch("SELECT * FROM seen_deliveries")}
    assert {k[len("pending:") :]: v for k, v in rows.items() if k.startswith("pending:")} == (
        pending
    )


def _whole_table_reads(plan: dict[str, Any], tables: set[str]) -> list[str]:
    """The nodes of an EXPLAIN (FORMAT JSON) plan that read one of ``tables`` whole: a
    sequential scan, or an index scan with no condition (a walk of the whole index)."""
    found = []
    table = plan.get("Relation Name")
    if table in tables:
        kind = plan["Node Type"]
        if kind == "Seq Scan" or (kind.startswith("Index") and "Index Cond" not in plan):
            found.append(f"{kind} on {table}")
    for child in plan.get("Plans", []):
        found += _whole_table_reads(child, tables)
    return found


async def test_grouped_statements_look_rows_up_by_key_after_the_table_grew(
    fast: PgDeliveries, postgres_url: str
) -> None:
    """A prepared statement's plan is made from the table's size when it is cached: made on a
    new deployment's empty ``seen_deliveries`` it read the whole table on every call (a hash of
    it, or a scan per key), and the table grew by a row a delivery while the plan lived (in the
    200 alerts/s bench the bot's three grouped statements took 1.7, 1.7 and 0.9 ms each, a third
    of PostgreSQL's CPU). The pool plans each call for the table as it is now (``PLANS``)."""
    from bot.store import pgwrite

    admin = await asyncpg.connect(postgres_dsn(postgres_url))
    pool = await fast._connection_pool()
    try:
        for table in ("seen_deliveries", "chat_users"):  # no ANALYZE to refresh the plans
            await admin.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            await admin.execute(f"ANALYZE {table}")  # as autovacuum leaves a new table: empty
        keys = ["sent:pc:1", "sent:pc:2"]
        args: dict[str, tuple[Any, ...]] = {
            "CLAIM_MANY": (["pending:pc:1", "pending:pc:2"], keys, [100, 100], [70, 70]),
            "LOOK_MANY": (keys, ["alert:pc:a1", "alert:pc:a2"], ["subject-1", "subject-2"]),
            "SENT_MANY": (["pending:pc:1", "pending:pc:2"], keys, [101, 101]),
            "DROP_MANY": (["pending:pc:1", "pending:pc:2"],),
        }
        async with pool.acquire() as conn:
            for _ in range(8):  # past the five calls after which PostgreSQL may cache a plan
                for name, values in args.items():
                    await conn.execute(getattr(pgwrite, name), *values)
            await admin.execute(
                "INSERT INTO seen_deliveries (id, seen_at) "
                "SELECT 'sent:pc:old-' || g, 1 FROM generate_series(1, 30000) AS g"
            )
            await admin.execute(
                "INSERT INTO chat_users (chat_id, subject_id, language) "
                "SELECT g, 'old-' || g, 'en' FROM generate_series(1, 5000) AS g"
            )
            for name, values in args.items():
                statement = await conn.fetchval(
                    "SELECT name FROM pg_prepared_statements WHERE statement = $1",
                    getattr(pgwrite, name),
                )
                assert statement is not None, name
                literals = ", ".join(f"$${_array(v)}$$" for v in values)
                explained = await conn.fetchval(
                    f"EXPLAIN (FORMAT JSON) EXECUTE {statement}({literals})"
                )
                plan = json.loads(explained)[0]["Plan"]
                assert _whole_table_reads(plan, {"seen_deliveries", "chat_users"}) == [], name
    finally:
        await admin.close()


def _array(values: list[Any]) -> str:
    """A PostgreSQL array literal of plain strings or numbers."""
    return "{" + ",".join(str(v) for v in values) + "}"
