"""Receipt settings for the platform: per-account on/off (the consent's default comes from
/link) and the subject's quiet hours. Preferences only; every change is in the access log."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import col, select

from consent.domain import consent as rules
from consent.domain.scopes import Scope
from consent.receipts.choices import zone
from consent.service.broker import Broker
from consent.service.errors import bad_request
from consent.service.linking import to_domain
from consent.store import audit
from consent.store.tables import (
    AccountHandle,
    ConsentRow,
    PlatformClient,
    QuietHours,
    ReceiptChoice,
    Subject,
)

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def minutes(value: str, name: str) -> int:
    """``HH:MM`` (24 h) → minutes after midnight; 400 otherwise."""
    match = _CLOCK.match(value)
    if match is None:
        raise bad_request(f"{name} must be a time like 22:00", "invalid_time")
    return int(match.group(1)) * 60 + int(match.group(2))


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def quiet_json(q: QuietHours | None) -> dict[str, str] | None:
    if q is None:
        return None
    return {"start": _clock(q.start_minute), "end": _clock(q.end_minute), "timezone": q.timezone}


async def settings(broker: Broker, subject: Subject) -> dict[str, Any]:
    """Each live transactions consent's default and each known account's setting."""
    now = broker.clock()
    out: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    async with broker.sessions() as session:
        rows = (
            await session.exec(
                select(ConsentRow).where(ConsentRow.subject_id == subject.subject_id)
            )
        ).all()
        for row in rows:
            policy = broker.policies.get(row.bank_id)
            if (
                policy is None
                or not rules.can_read(to_domain(row), Scope.TRANSACTIONS, policy, now).allowed
            ):
                continue
            choices = {
                c.account: c.enabled
                for c in (
                    await session.exec(
                        select(ReceiptChoice).where(ReceiptChoice.consent_id == row.consent_id)
                    )
                ).all()
            }
            default = choices.get("*", False)
            out.append({"consent_id": row.consent_id, "bank_id": row.bank_id, "enabled": default})
            handles = (
                await session.exec(
                    select(AccountHandle.handle)
                    .where(AccountHandle.consent_id == row.consent_id)
                    .order_by(col(AccountHandle.handle))
                )
            ).all()
            accounts.extend(
                {"account_handle": h, "bank_id": row.bank_id, "enabled": choices.get(h, default)}
                for h in handles
            )
        quiet = await session.get(QuietHours, subject.subject_id)
    return {"consents": out, "accounts": accounts, "quiet_hours": quiet_json(quiet)}


async def choose(
    broker: Broker, client: PlatformClient, subject: Subject, handle: AccountHandle, on: bool
) -> dict[str, Any]:
    """Receipts on or off for one account (authorized before: a live consent with
    ``transactions``, owned by the caller, under the subject)."""
    async with broker.writes(), broker.sessions() as session:
        old = await session.get(ReceiptChoice, (handle.consent_id, handle.handle))
        since = old.since if old is not None and old.enabled == on else broker.clock()
        choice = ReceiptChoice(
            consent_id=handle.consent_id, account=handle.handle, enabled=on, since=since
        )
        await session.merge(choice)
        await audit.record_action(
            session,
            subject_id=subject.subject_id,
            client_id=client.client_id,
            action="receipts.on" if on else "receipts.off",
            at=broker.clock(),
            scope="transactions",
        )
        await session.commit()
    return {"account_handle": handle.handle, "enabled": on}


async def set_quiet(
    broker: Broker,
    client: PlatformClient,
    subject: Subject,
    start: str | None,
    end: str | None,
    timezone: str | None,
) -> dict[str, Any]:
    """Quiet hours from ``start`` to ``end`` (local times in ``timezone``), or off when
    ``start`` is None. Receipts held when they end are released as one summary."""
    quiet: QuietHours | None = None
    if start is not None:
        first, last = minutes(start, "start"), minutes(end or "", "end")
        if first == last:
            raise bad_request("start and end must differ", "invalid_time")
        name = timezone or "UTC"
        if zone(name) is None:
            raise bad_request(
                "timezone must be an IANA zone like Europe/London", "invalid_timezone"
            )
        quiet = QuietHours(
            subject_id=subject.subject_id, start_minute=first, end_minute=last, timezone=name
        )
    async with broker.writes(), broker.sessions() as session:
        old = await session.get(QuietHours, subject.subject_id)
        if old is not None:
            await session.delete(old)
            await session.flush()
        if quiet is not None:
            session.add(quiet)
        await audit.record_action(
            session,
            subject_id=subject.subject_id,
            client_id=client.client_id,
            action="receipts.quiet_hours",
            at=broker.clock(),
        )
        await session.commit()
    broker.receipt_wake.set()  # held receipts go out now if the quiet hours are over
    return {"quiet_hours": quiet_json(quiet)}
