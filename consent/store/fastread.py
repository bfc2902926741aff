"""The balances read's one query on SQLite, on one dedicated connection, in one thread hop.

Through SQLAlchemy's aiosqlite adapter a query costs five hand-offs to the connection's thread
(cursor, execute, fetch, close, rollback on return), each a GIL hand-off that the event loop pays
for under load. This reader sends the whole query as one call. It is read-only (``query_only``)
and, in WAL mode, never waits for the writer. PostgreSQL does not need it.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import aiosqlite

# Same statement as consent.service.reads._AUTHORIZED (a test checks both give the same rows).
AUTHORIZED_SQL = """
SELECT c.consent_id, c.subject_id, c.client_id, c.bank_id, c.scopes, c.purpose, c.status,
       c.created_at, c.expires_at, c.authorized_at, c.ended_at,
       k.kek_version, k.wrapped, s.blob
FROM consent AS c
LEFT OUTER JOIN consent_key AS k ON k.consent_id = c.consent_id
LEFT OUTER JOIN sealed_secret AS s ON s.consent_id = c.consent_id AND s.field = 'access_token'
WHERE c.subject_id = ? AND c.status = 'authorized'
ORDER BY c.created_at, c.consent_id
"""


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
    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None

    async def open(self) -> None:
        conn = await aiosqlite.connect(self.path, timeout=30)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA query_only=ON")
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def authorized(self, subject_id: str) -> list[sqlite3.Row]:
        """The subject's authorized consents with wrapped keys and sealed access tokens."""
        assert self._conn is not None, "SqliteReader.open() first"
        return list(await self._conn.execute_fetchall(AUTHORIZED_SQL, (subject_id,)))
