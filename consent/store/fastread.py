"""The balances read's one query, sent straight to the database driver.

SQLite: through SQLAlchemy's aiosqlite adapter a query costs five hand-offs to the connection's
thread (cursor, execute, fetch, close, rollback on return), each a GIL hand-off that the event loop
pays for under load; even one hand-off (a queue, a thread wake-up, a wake-up of the loop through
its self-pipe) costs about three times the query (measured: 56 µs of CPU through aiosqlite, 17 µs
run directly, for this indexed query of a few rows). :class:`SqliteReader` runs the query directly
on the event loop's thread, on a dedicated read-only (``query_only``) connection: in WAL mode a
reader never waits for the writer, and the pages it reads are in memory. Should the database be
busy all the same (a WAL recovery after a crash, a journal-mode change), the read goes to a
thread with the usual busy timeout instead of holding up the loop.

PostgreSQL: through SQLAlchemy a read costs a pool checkout with a ping round trip, a greenlet
hop per call and a rollback on return. :class:`PostgresReader` runs the query (prepared once per
connection) on a few raw asyncpg connections of its own, one round trip per read; a single
statement is its own snapshot, so it needs no transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from consent.store.pgpool import PgConnections

# Same statement as consent.service.reads._AUTHORIZED (a test checks both give the same rows).
_AUTHORIZED = """
SELECT c.consent_id, c.subject_id, c.client_id, c.bank_id, c.scopes, c.purpose, c.status,
       c.created_at, c.expires_at, c.authorized_at, c.ended_at,
       k.kek_version, k.wrapped, s.blob
FROM consent AS c
LEFT OUTER JOIN consent_key AS k ON k.consent_id = c.consent_id
LEFT OUTER JOIN sealed_secret AS s ON s.consent_id = c.consent_id AND s.field = 'access_token'
WHERE c.subject_id = {subject} AND {status} = 'authorized'
ORDER BY c.created_at, c.consent_id
"""
# SQLite (no statistics) would otherwise look the rows up by the status index, i.e. walk every
# authorized consent of every subject (2.5 ms a read at 20,000 consents, against 10 µs by the
# subject index); the unary + keeps the status column out of the index choice
AUTHORIZED_SQL = _AUTHORIZED.format(subject="?", status="+c.status")
AUTHORIZED_PG_SQL = _AUTHORIZED.format(subject="$1", status="c.status")
# the subject of a request (authorization's first look-up; briefly cached by the caller)
_SUBJECT = "SELECT subject_id, client_id, created_at FROM subject WHERE subject_id = {subject}"
SUBJECT_SQL = _SUBJECT.format(subject="?")
SUBJECT_PG_SQL = _SUBJECT.format(subject="$1")


class Reader(Protocol):
    """A fast path for the balances read's query."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def authorized(self, subject_id: str) -> Sequence[Any]:
        """Rows of the statement above, each indexable by column name."""
        ...

    async def subject(self, subject_id: str) -> Any | None:
        """The subject's row (``subject_id``, ``client_id``, ``created_at``), or None."""
        ...


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite…:///path`` URL; None for other databases and in-memory ones."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def utc(value: Any) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (as ``UTCDateTime`` returns it)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class SqliteReader:
    """The query on the event loop's thread (see the module docstring)."""

    # how long the loop may wait for a lock before the read moves to a thread (WAL readers wait
    # only in rare moments: recovery after a crash, a checkpoint that resets the WAL)
    LOOP_BUSY_TIMEOUT_S = 0.005

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self.deferred = 0  # reads that found the database busy and went to a thread

    def _connect(self, timeout: float) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only=ON")
        return conn

    async def open(self) -> None:
        self._conn = self._connect(self.LOOP_BUSY_TIMEOUT_S)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def authorized(self, subject_id: str) -> list[sqlite3.Row]:
        """The subject's authorized consents with wrapped keys and sealed access tokens."""
        return await self._rows(AUTHORIZED_SQL, subject_id)

    async def subject(self, subject_id: str) -> sqlite3.Row | None:
        """The subject's row, or None (the same read on the loop's thread)."""
        rows = await self._rows(SUBJECT_SQL, subject_id)
        return rows[0] if rows else None

    async def _rows(self, sql: str, subject_id: str) -> list[sqlite3.Row]:
        assert self._conn is not None, "SqliteReader.open() first"
        try:
            return self._conn.execute(sql, (subject_id,)).fetchall()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
        self.deferred += 1
        return await asyncio.to_thread(self._blocking, sql, subject_id)

    def _blocking(self, sql: str, subject_id: str) -> list[sqlite3.Row]:
        conn = self._connect(30)
        try:
            return conn.execute(sql, (subject_id,)).fetchall()
        finally:
            conn.close()


class PostgresReader:
    """The query on ``size`` connections of its own (see :class:`PgConnections`). Eight served
    64 concurrent clients best in ``bench.broker_balances`` (two or four: 10% fewer requests;
    sixteen: no better); each process holds them open for its lifetime."""

    def __init__(self, dsn: str, size: int = 8) -> None:
        self.connections = PgConnections(dsn, size)

    async def open(self) -> None:
        await self.connections.open()

    async def close(self) -> None:
        await self.connections.close()

    async def authorized(self, subject_id: str) -> list[asyncpg.Record]:
        """The subject's authorized consents with wrapped keys and sealed access tokens."""
        return await self._rows(AUTHORIZED_PG_SQL, subject_id)

    async def subject(self, subject_id: str) -> asyncpg.Record | None:
        """The subject's row, or None."""
        rows = await self._rows(SUBJECT_PG_SQL, subject_id)
        return rows[0] if rows else None

    async def _rows(self, sql: str, subject_id: str) -> list[asyncpg.Record]:
        conns = self.connections
        conn = await conns.take()
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, subject_id)
        except BaseException:
            conns.discard(conn)
            raise
        conns.give(conn)
        return rows
