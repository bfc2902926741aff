"""Serialize audit appends per subject so the hash chain never forks.

An append reads the subject's last entry and writes the next one; two transactions doing that at
once for the same subject would both write the same sequence number. The first append in a
session takes the subject's lock (an asyncio lock within the process, and on PostgreSQL a row
lock on the subject, which also serializes across processes); it is released when the session's
transaction ends, whether it commits or rolls back.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

_HELD = "chatbank_held_subject_locks"
_REGISTRY = "chatbank_subject_locks"


class SubjectLocks:
    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, subject_id: str) -> asyncio.Lock:
        lock = self._locks.get(subject_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[subject_id] = lock
        return lock


def _release(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    held: dict[str, asyncio.Lock] = session.info.pop(_HELD, {})
    for lock in held.values():
        if lock.locked():
            lock.release()


async def lock_subject(session: AsyncSession, subject_id: str) -> None:
    """Hold ``subject_id``'s audit lock until this session's transaction ends."""
    registry: SubjectLocks | None = session.info.get(_REGISTRY)
    held: dict[str, asyncio.Lock] = session.sync_session.info.setdefault(_HELD, {})
    if registry is None or subject_id in held:
        return
    lock = registry.lock(subject_id)
    await lock.acquire()
    held[subject_id] = lock
    if not event.contains(session.sync_session, "after_transaction_end", _release):
        event.listen(session.sync_session, "after_transaction_end", _release)
    bind: Any = session.get_bind()
    if bind.dialect.name == "postgresql":
        from consent.store.tables import Subject

        await session.exec(
            select(Subject).where(Subject.subject_id == subject_id).with_for_update()
        )


async def lock_across_processes(session: AsyncSession, key: str) -> bool:
    """On PostgreSQL, hold a transaction-scoped advisory lock on ``key`` (another broker process
    taking it waits until this transaction ends) and return True; on SQLite (one process, whose
    callers already hold an asyncio lock) do nothing and return False."""
    bind: Any = session.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    conn = await session.connection()
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
    return True


def registry(factory: Any) -> SubjectLocks | None:
    """The subject locks shared by every session of ``factory`` (made by ``session_factory``)."""
    info: dict[str, Any] = factory.kw.get("info") or {}
    found = info.get(_REGISTRY)
    return found if isinstance(found, SubjectLocks) else None


def session_info() -> dict[str, Any]:
    """The ``info`` every broker session starts with."""
    return {_REGISTRY: SubjectLocks()}
