"""Engines and sessions: SQLite in WAL mode with foreign keys, or PostgreSQL through asyncpg."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.store.locks import session_info


def async_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite://`` URLs and pick the async drivers."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(engine: AsyncEngine, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL: readers never block the writer nor each other
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # deleted rows (a shredded data key, sealed tokens) are zeroed in place, not left in
        # free pages (consent.store.shredding)
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()


def make_engine(url: str) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite"):
        # enough pooled connections for the concurrent reads: connections beyond the pool are
        # opened and closed per use (a thread and a file open each time)
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, pool_size=32, max_overflow=32
        )
        # NORMAL is durable enough for these connections in WAL mode: a commit survives a crash
        # of the process, the database can never be corrupted, and the only loss on a power cut
        # is the last commits before it. The access log does not rely on this: the audit
        # writer's own connection (consent.store.audit_writer.SqliteAppender) syncs every commit.
        _sqlite_pragmas(engine, "NORMAL")
        return engine
    # the hot paths (the balances read, the access log) use their own asyncpg connections
    # (consent.store.pgpool: 8 for reads, 1 for the audit writer); this pool serves the rest.
    # 10 + 10 keeps a broker process under 30 connections, so several fit PostgreSQL's
    # default max_connections of 100
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine, class_=AsyncSession, expire_on_commit=False, info=session_info()
    )
