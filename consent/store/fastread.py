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


# the change counter the triggers of migration 0013 keep (every insert, update or delete of a
# consent, its key or its sealed values adds one, in the writer's own transaction)
CHANGE_COUNTER_SQL = "SELECT n FROM consent_change WHERE id = 1"
COUNTED_TABLES = ("consent", "consent_key", "sealed_secret")
COUNTING_TRIGGERS = frozenset(
    f"tr_{table}_{event}_counts"
    for table in COUNTED_TABLES
    for event in ("insert", "update", "delete")
)


class SqliteReader:
    """The query on the event loop's thread (see the module docstring).

    The subject's rows as last read are kept with the change counter read just before them
    (``consent_change.n``, migration 0013): while the counter reads back the same, nothing those
    rows come from has been committed since (by any connection or process), so the next read
    answers with them. Every access-log commit drops the connection's page cache, so the query
    read its pages again each time; the counter is one row of one small table. A database
    without the counter (built without the migrations) always runs the query."""

    # how long the loop may wait for a lock before the read moves to a thread (WAL readers wait
    # only in rare moments: recovery after a crash, a checkpoint that resets the WAL)
    LOOP_BUSY_TIMEOUT_S = 0.005
    REMEMBERED = 10_000  # subjects whose rows are kept (the oldest dropped first)

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self.deferred = 0  # reads that found the database busy and went to a thread
        self.reused = 0  # reads answered with the rows read at the same counter (for tests)
        self._counted = False  # whether the database keeps the counter (see open)
        self._rows_at: dict[str, tuple[int, list[sqlite3.Row]]] = {}

    def _connect(self, timeout: float) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only=ON")
        return conn

    async def open(self) -> None:
        self._conn = self._connect(self.LOOP_BUSY_TIMEOUT_S)
        self._counted = self._keeps_count(self._conn)

    @staticmethod
    def _keeps_count(conn: sqlite3.Connection) -> bool:
        """Whether the counter and every one of its triggers are there (a table rebuilt by a
        later migration would lose its triggers: then the rows are read every time)."""
        try:
            names = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')"
                )
            }
        except sqlite3.OperationalError:
            return False  # busy at start: read every time, as without the counter
        return "consent_change" in names and names >= COUNTING_TRIGGERS

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def authorized(self, subject_id: str) -> list[sqlite3.Row]:
        """The subject's authorized consents with wrapped keys and sealed access tokens (the
        same rows as last time while the change counter has not moved: see the class)."""
        version = self._change_count()
        if version is not None:
            seen = self._rows_at.get(subject_id)
            if seen is not None and seen[0] == version:
                self.reused += 1
                return seen[1]
        rows = await self._rows(AUTHORIZED_SQL, subject_id)
        if version is not None:
            remembered = self._rows_at
            remembered.pop(subject_id, None)
            remembered[subject_id] = (version, rows)
            if len(remembered) > self.REMEMBERED:
                del remembered[next(iter(remembered))]
        return rows

    def _change_count(self) -> int | None:
        """The change counter now, or None (no counter in this database, or the database is
        busy: then the query runs as before)."""
        if not self._counted:
            return None
        assert self._conn is not None, "SqliteReader.open() first"
        try:
            row = self._conn.execute(CHANGE_COUNTER_SQL).fetchone()
        except sqlite3.OperationalError:
            return None  # busy: the query (and its move to a thread) as before
        return int(row[0]) if row is not None else None

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
