"""Who gets receipts for which account, and quiet hours (preferences, no financial values)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.store.tables import QuietHours, ReceiptChoice


async def enabled(session: AsyncSession, consent_id: str, handle: str) -> bool:
    """The account's own choice, else the consent's default from /link (off if neither)."""
    rows = (
        await session.exec(select(ReceiptChoice).where(ReceiptChoice.consent_id == consent_id))
    ).all()
    by_account = {r.account: r.enabled for r in rows}
    return by_account.get(handle, by_account.get("*", False))


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
