"""The webhook's writes on SQLite, on the event loop's thread.

Measured (``python -m bench.alert_latency``, ``bench.dbtrace``): through SQLAlchemy's async
driver each delivery's writes (the nonce, the claim, "sent") made 13 hand-offs between the event
loop and the connection's thread per write, all under the bot's write gate; at 50 alerts a second
the gate was held 97% of the time and the queue for it (p50 176 ms) was most of the hop from the
relay to the bot. Here each is one transaction (``BEGIN IMMEDIATE``: the write lock first, so
what is read next is current) on a plain ``sqlite3`` connection of the loop's own, a few
statements of microseconds; the nonce and the claim, both taken before the message is sent,
commit together. Another connection holding the write lock is waited for with ``asyncio.sleep``
between tries, never in SQLite's busy handler on the loop.

Same rows and the same outcomes as :func:`bot.store.repo.first_time`,
:func:`bot.store.deliveries.claim` and :func:`bot.store.deliveries.mark_sent` (``seen_deliveries``,
keys ``nonce:``, ``pending:``, ``sent:``, ``alert:``): "sent" is still written only after the Bot
API accepted the message, so exactly once as the user sees it holds across a kill as before."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from bot.store.deliveries import Claim

# while another connection holds SQLite's write lock, wait this long between tries (about 4 s in
# all; then the error goes to the caller, which answers 503 and the broker retries)
LOCK_RETRY_S = (0.001, 0.002, 0.005, *(0.01,) * 9, *(0.05,) * 10, *(0.1,) * 32)
_T = TypeVar("_T")


def sqlite_file(database_url: str) -> str | None:
    """The file of a ``sqlite…:///path`` URL; None for other databases and in-memory ones."""
    if not database_url.startswith("sqlite") or ":///" not in database_url:
        return None
    path = database_url.split(":///", 1)[1].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def _key(prefix: str, scoped_id: str) -> str:
    return f"{prefix}:{scoped_id}"[:120]


class SqliteDeliveries:
    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self.lock_retries = 0  # times the write lock was held by another connection

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # no busy handler (timeout 0): a locked database is waited for in _write
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # as bot.store.db's connections
            self._conn = conn
        return self._conn

    async def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` in one transaction, once SQLite's write lock is free."""
        for wait in (*LOCK_RETRY_S, None):
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                if wait is None or "locked" not in str(e):
                    raise
                self.lock_retries += 1
                await asyncio.sleep(wait)
                continue
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result
        raise AssertionError("unreachable")

    async def first_time(self, key: str, now: int) -> bool:
        """:func:`bot.store.repo.first_time`."""
        return await self._write(lambda conn: _insert_new(conn, key[:120], now))

    async def first_time_and_claim(
        self, key: str, scoped_id: str, now: int, lease_s: int
    ) -> Claim | None:
        """Record ``key`` (a nonce) and claim the delivery ``scoped_id`` in one transaction;
        None (nothing written) if ``key`` was recorded before (a replay)."""

        def work(conn: sqlite3.Connection) -> Claim | None:
            if not _insert_new(conn, key[:120], now):
                return None
            return _claim(conn, scoped_id, now, lease_s)

        return await self._write(work)

    async def claim(self, scoped_id: str, now: int, lease_s: int) -> Claim:
        """:func:`bot.store.deliveries.claim` (a message of a batch, whose nonce was recorded
        for the whole request)."""
        return await self._write(lambda conn: _claim(conn, scoped_id, now, lease_s))

    async def mark_sent(self, scoped_id: str, now: int, alert_id: str | None = None) -> None:
        """:func:`bot.store.deliveries.mark_sent`."""

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM seen_deliveries WHERE id = ?", (_key("pending", scoped_id),))
            upsert = "INSERT OR REPLACE INTO seen_deliveries (id, seen_at) VALUES (?, ?)"
            conn.execute(upsert, (_key("sent", scoped_id), now))
            if alert_id is not None:
                conn.execute(upsert, (_key("alert", alert_id), now))

        await self._write(work)


def _insert_new(conn: sqlite3.Connection, key: str, now: int) -> bool:
    found = conn.execute(
        "INSERT OR IGNORE INTO seen_deliveries (id, seen_at) VALUES (?, ?)", (key, now)
    )
    return found.rowcount == 1


def _claim(conn: sqlite3.Connection, scoped_id: str, now: int, lease_s: int) -> Claim:
    """:func:`bot.store.deliveries.claim` inside a transaction holding the write lock."""
    pending, sent = _key("pending", scoped_id), _key("sent", scoped_id)
    if conn.execute("SELECT 1 FROM seen_deliveries WHERE id = ?", (sent,)).fetchone():
        return Claim.SENT
    if _insert_new(conn, pending, now):
        return Claim.CLAIMED
    taken = conn.execute(
        "UPDATE seen_deliveries SET seen_at = ? WHERE id = ? AND seen_at <= ?",
        (now, pending, now - lease_s),
    )
    return Claim.CLAIMED if taken.rowcount == 1 else Claim.BUSY
