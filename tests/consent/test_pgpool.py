"""The raw asyncpg connections of the PostgreSQL hot paths: bounded, reused, and never handing out
a connection that was interrupted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from consent.store.pgpool import PgConnections, postgres_dsn


@pytest.mark.parametrize(
    ("url", "dsn"),
    [
        ("postgresql://postgres@127.0.0.1:5432/db", "postgresql://postgres@127.0.0.1:5432/db"),
        ("postgres://u:p%40ss@db.internal/consent", "postgresql://u:p%40ss@db.internal/consent"),
        (
            "postgresql+asyncpg://u@h:6432/c?sslmode=require",
            "postgresql://u@h:6432/c?sslmode=require",
        ),
        ("sqlite+aiosqlite:///data/consent.db", None),
        ("sqlite://", None),
    ],
)
def test_postgres_dsn(url: str, dsn: str | None) -> None:
    assert postgres_dsn(url) == dsn


@pytest.fixture
async def conns(postgres_url: str) -> AsyncIterator[PgConnections]:
    pool = PgConnections(postgres_url, 2)
    yield pool
    await pool.close()


async def backend(conn: Any) -> int:
    return int(await conn.fetchval("SELECT pg_backend_pid()"))


async def closed(conn: Any) -> bool:
    """Whether ``conn`` gets closed within a second (discarded ones close in the background)."""
    for _ in range(100):
        if conn.is_closed():
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.mark.postgres
async def test_connections_are_reused_and_bounded(conns: PgConnections) -> None:
    await conns.open()
    a, b = await conns.take(), await conns.take()
    pids = {await backend(a), await backend(b)}
    third = asyncio.ensure_future(conns.take())
    await asyncio.sleep(0.05)
    assert not third.done()  # both in use: the third caller waits
    conns.give(a)
    assert await asyncio.wait_for(third, 1) is a
    conns.give(a)
    conns.give(b)
    for _ in range(5):
        c = await conns.take()
        assert await backend(c) in pids
        conns.give(c)


@pytest.mark.postgres
async def test_a_discarded_connection_is_replaced_for_whoever_waits(
    conns: PgConnections,
) -> None:
    a, b = await conns.take(), await conns.take()
    old = await backend(a)
    waiting = asyncio.ensure_future(conns.take())
    await asyncio.sleep(0.01)
    conns.discard(a)
    c = await asyncio.wait_for(waiting, 5)
    assert await closed(a)
    assert c is not a and await backend(c) != old
    conns.give(b)
    conns.give(c)


@pytest.mark.postgres
async def test_a_caller_cancelled_while_waiting_loses_no_connection(
    conns: PgConnections,
) -> None:
    a, b = await conns.take(), await conns.take()
    gave_up = asyncio.ensure_future(conns.take())
    await asyncio.sleep(0.01)
    gave_up.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gave_up
    conns.give(a)  # handed to nobody: the waiter is gone
    assert await conns.take() is a

    handed = asyncio.ensure_future(conns.take())
    await asyncio.sleep(0.01)
    conns.give(b)  # resolves the waiter ...
    handed.cancel()  # ... which is cancelled before it runs: the connection goes back
    with pytest.raises(asyncio.CancelledError):
        await handed
    conns.give(a)
    got = {await asyncio.wait_for(conns.take(), 1), await asyncio.wait_for(conns.take(), 1)}
    assert got == {a, b}
    for conn in got:
        conns.give(conn)


@pytest.mark.postgres
async def test_closing_closes_idle_connections_and_those_given_back(
    conns: PgConnections,
) -> None:
    a, b = await conns.take(), await conns.take()
    conns.give(a)
    waiting = asyncio.ensure_future(conns.take())
    await conns.close()
    assert a.is_closed()
    with pytest.raises(asyncpg.InterfaceError):
        await waiting
    conns.give(b)
    assert await closed(b)
    with pytest.raises(asyncpg.InterfaceError):
        await conns.take()


@pytest.mark.postgres
async def test_connections_lost_while_idle_are_replaced(
    conns: PgConnections, postgres_url: str
) -> None:
    """A server restart (here: its backends terminated) costs no request."""
    await conns.open()
    a, b = await conns.take(), await conns.take()
    pids = {await backend(a), await backend(b)}
    conns.give(a)
    conns.give(b)
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p", pids)
    finally:
        await admin.close()
    assert await closed(a) and await closed(b)
    c, d = await conns.take(), await conns.take()
    assert {await backend(c), await backend(d)}.isdisjoint(pids)
    conns.give(c)
    conns.give(d)
