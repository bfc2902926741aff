"""A few raw asyncpg connections for the broker's hot paths on PostgreSQL.

The balances read and the audit writer send their statements straight to asyncpg: through
SQLAlchemy's pool each checkout costs a ping round trip (``pool_pre_ping``), a greenlet hop and a
rollback on return, and ``asyncpg.Pool`` spends about as much CPU again as the query itself on a
shielded task per release. :class:`PgConnections` keeps a fixed number of connections; taking an
idle one and giving it back are plain list operations. A connection that was interrupted (a
cancelled request, a lost server) is closed, never handed out again, and replaced on demand.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from consent.store.db import async_url

CLOSE_TIMEOUT_S = 5.0


def postgres_dsn(url: str) -> str | None:
    """The asyncpg DSN of a PostgreSQL database URL (any ``+driver`` dropped); None otherwise."""
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() != "postgresql":
        return None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class PgConnections:
    """Up to ``size`` connections to ``dsn``, each used by one task at a time.

    Use ``conn = await take()`` … ``give(conn)`` on success, ``discard(conn)`` if anything went
    wrong while it was in use (its protocol state is then unknown)."""

    def __init__(self, dsn: str, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.dsn = dsn
        self.size = size
        self._idle: list[Any] = []  # asyncpg.Connection (asyncpg ships no type hints)
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._count = 0  # connections open or being opened
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()  # discarded connections being closed

    async def open(self) -> None:
        """Open every connection now (rather than on first use)."""
        while self._count < self.size:
            self._count += 1
            self.give(await self._open_one())

    async def _open_one(self) -> Any:
        """A new connection in a slot already counted (the slot is released if this fails)."""
        try:
            return await asyncpg.connect(self.dsn)
        except BaseException:
            self._release_slot()
            raise

    def _release_slot(self) -> None:
        """One connection fewer: a waiter, if any, takes over the slot and opens a new one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._count -= 1

    async def take(self) -> Any:
        if self._closed:
            raise asyncpg.InterfaceError("the connections are closed")
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._count -= 1  # lost while idle (e.g. the server restarted): open a new one
        if self._count < self.size:
            self._count += 1
            return await self._open_one()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            conn = await waiter
        except asyncio.CancelledError:
            # handed a connection (or a slot) just as the caller gave up: pass it on
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                if waiter.result() is None:
                    self._release_slot()
                else:
                    self.give(waiter.result())
            raise
        if conn is None:  # a connection was dropped: open its replacement
            return await self._open_one()
        return conn

    def give(self, conn: Any) -> None:
        """Return a connection that finished its work normally."""
        if self._closed or conn.is_closed():
            self.discard(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    @contextlib.asynccontextmanager
    async def using(self) -> AsyncIterator[Any]:
        """A connection for the body: given back when the body ends normally, or when it failed
        but the connection is still usable and out of any transaction (:func:`rolled_back`);
        discarded otherwise, and always when the body was cancelled mid-statement (the server
        rolls back what it had begun when the connection closes)."""
        conn = await self.take()
        try:
            yield conn
        except Exception:
            if await rolled_back(conn):
                self.give(conn)
            else:
                self.discard(conn)
            raise
        except BaseException:
            self.discard(conn)
            raise
        self.give(conn)

    def discard(self, conn: Any) -> None:
        """Drop a connection whose state is unknown; it is never handed out again.

        It is closed in the background by ``Connection.close()``, which first has the server
        cancel a statement still running on it: a statement abandoned by a cancelled caller
        (say, waiting for a lock) must not go on to run, and commit, on its own. Just closing
        the socket would not stop it before its next write."""
        task = asyncio.get_running_loop().create_task(_close(conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        if self._closed:
            self._count -= 1
        else:
            self._release_slot()

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        self._count -= len(idle)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the connections are closed"))
        self._waiters.clear()
        await asyncio.gather(
            *(_close(conn) for conn in idle), *self._closing, return_exceptions=True
        )


async def rolled_back(conn: Any) -> bool:
    """Whether ``conn`` is usable again, out of any transaction (rolled back if need be)."""
    if conn.is_closed():
        return False
    try:
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")
    except Exception:
        return False
    return True


async def _close(conn: Any) -> None:
    """Close ``conn`` gracefully (cancelling what it runs), or abort it if that fails."""
    try:
        await conn.close(timeout=CLOSE_TIMEOUT_S)
    except Exception:
        conn.terminate()
    except BaseException:
        conn.terminate()
        raise
