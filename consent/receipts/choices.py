"""Who gets receipts for which account, and quiet hours (preferences, no financial values)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.store.tables import QuietHours, ReceiptChoice


async def receipts_since(session: AsyncSession, consent_id: str, handle: str) -> datetime | None:
    """Since when the account's card payments get receipts (its own choice, else the
    consent's default from /link); None: they do not."""
    rows = (
        await session.exec(select(ReceiptChoice).where(ReceiptChoice.consent_id == consent_id))
    ).all()
    return chosen_since(rows, handle)


def chosen_since(rows: Iterable[ReceiptChoice], handle: str) -> datetime | None:
    """:func:`receipts_since` from the consent's choices."""
    by_account = {r.account: r for r in rows}
    chosen = by_account.get(handle) or by_account.get("*")
    return chosen.since if chosen is not None and chosen.enabled else None


def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def is_quiet(quiet: QuietHours | None, now: datetime) -> bool:
    """Whether ``now`` falls in the quiet hours (which may span midnight)."""
    if quiet is None or quiet.start_minute == quiet.end_minute:
        return False
    tz = zone(quiet.timezone)
    if tz is None:
        return False
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if quiet.start_minute < quiet.end_minute:
        return quiet.start_minute <= minute < quiet.end_minute
    return minute >= quiet.start_minute or minute < quiet.end_minute
