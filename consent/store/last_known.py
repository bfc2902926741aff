"""The last balance the broker read for each account, sealed under the consent's data key.

Each view is sealed with associated data naming its consent and account handle, so a row moved
to another account or consent does not open; shredding the consent's data key (and its rows,
:func:`consent.store.secrets.shred`) makes every one unreadable. Writes are throttled in memory
(:class:`Saved`): an unchanged view is written again only after ``refresh``, so the stored
``read_at`` is never later than the truth and the hot path rarely writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.domain.views import View
from consent.store.tables import LastBalance
from consent.vault.envelope import open_sealed, seal


def _field(handle: str) -> str:
    return f"last_balance:{handle}"


def seal_view(key: bytes, consent_id: str, handle: str, view: View) -> bytes:
    return seal(key, orjson.dumps(view), consent_id=consent_id, field=_field(handle))


def open_view(key: bytes, consent_id: str, handle: str, blob: bytes) -> View:
    view: View = orjson.loads(open_sealed(key, blob, consent_id=consent_id, field=_field(handle)))
    return view


@dataclass(frozen=True, slots=True)
class Known:
    view: View
    read_at: datetime


async def load(session: AsyncSession, key: bytes, consent_id: str) -> dict[str, Known]:
    """The consent's last balances by account handle."""
    rows = (
        await session.exec(select(LastBalance).where(col(LastBalance.consent_id) == consent_id))
    ).all()
    return {r.handle: Known(open_view(key, consent_id, r.handle, r.blob), r.read_at) for r in rows}


async def save(
    session: AsyncSession, key: bytes, consent_id: str, items: list[tuple[str, View, datetime]]
) -> None:
    """Insert or replace these accounts' last balances (the caller commits). One upsert per
    account, so two broker processes saving the same account at once both succeed; a row is
    only replaced by a newer read, so the stored ``read_at`` never goes back in time."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table: Table = LastBalance.__table__  # type: ignore[attr-defined]
    for handle, view, read_at in items:
        blob = seal_view(key, consent_id, handle, view)
        stmt = insert(table).values(
            handle=handle, consent_id=consent_id, blob=blob, read_at=read_at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.handle],
            set_={"blob": stmt.excluded.blob, "read_at": stmt.excluded.read_at},
            where=table.c.read_at <= stmt.excluded.read_at,
        )
        await session.exec(stmt)


@dataclass
class Saved:
    """What this process last wrote per account: the view's content (without its as-of time)
    and when. Kept as it is and compared as a dict, not as a digest of its JSON: the digest cost
    every read a serialization and a hash per account (bench.broker_wrk)."""

    refresh: timedelta = timedelta(seconds=60)
    _by_handle: dict[str, tuple[View, datetime]] = field(default_factory=dict)

    def due(self, handle: str, view: View, now: datetime) -> bool:
        """Whether this view should be written now (new, changed, or last written long ago)."""
        seen = self._by_handle.get(handle)
        return seen is None or now - seen[1] >= self.refresh or not _same(seen[0], view)

    def mark(self, handle: str, view: View, now: datetime) -> None:
        self._by_handle[handle] = (_content(view), now)

    def forget(self, handles: list[str]) -> None:
        for h in handles:
            self._by_handle.pop(h, None)


def _content(view: View) -> View:
    """The view's content without its as-of time (the bank stamps every answer anew)."""
    return {k: v for k, v in view.items() if k != "as_of"}


def _same(content: View, view: View) -> bool:
    """Whether ``view`` has exactly ``content`` besides its as-of time (same keys, equal values
    of the same types: 1 and 1.0 or "1" differ, as they would in the stored JSON)."""
    if len(view) - ("as_of" in view) != len(content):
        return False
    for k, v in content.items():
        w = view.get(k, _MISSING)
        if type(w) is not type(v) or w != v:
            return False
    return True


_MISSING = object()
