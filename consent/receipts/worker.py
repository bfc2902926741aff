"""The receipt worker: fetches what changed on a marked account with the consent's token,
minimizes each new card payment to a receipt, and writes receipts to the outbox, from which
the relay pushes them to the platform (signed, retried until acknowledged).

- **Bundles.** The worker waits ``receipt_bundle_s`` after an event before fetching, so the
  payments of a burst arrive in one fetch and become one message ("3 payments at …").
- **Edits.** A pending payment that books, or that disappears from the statement (reversed; the
  bank also says so with its ``transaction-changed`` event), changes its receipt row, and the
  message that showed it is sent again as an edit (same message key). A quiet-hours summary
  (key ``rcs_…``) is edited as a whole: every receipt it shows, whichever consent (bank) it
  came from, each opened with its own consent's key, with the count and totals again. Two
  processes editing one summary at once for two banks' payments may each show the other's
  change not yet made (READ COMMITTED; locking both would risk deadlocks): the last edit
  wins until the next change.
- **Quiet hours.** During the subject's quiet hours new receipts are kept, sealed, without a
  message; when they end, one summary message carries them.
- **Several broker processes** (PostgreSQL, ``chatbank cluster``): each piece of work is done
  by one process. The worker claims due work rows with ``FOR UPDATE SKIP LOCKED`` and, in the
  same short transaction, writes a lease (``claimed_until``, the fetch timeout plus a margin)
  that no other process claims through; no transaction is held while the bank is called. The
  outcome is written only if the row still carries that lease (a process that stalled past it
  lost the work to another and writes nothing). A new event on a claimed account bumps its
  version, so the claimant looks again when done. A quiet-hours summary is one transaction
  that locks the held receipts it takes with ``FOR UPDATE SKIP LOCKED``: another process
  finds them locked (or, once committed, no longer held) and sends nothing. SQLite is one
  broker process: its claims are the in-process ones and cost no write.
- **Failures.** A bank that fails or stalls past ``receipt_fetch_timeout_s`` leaves the work row
  in place with a backed-off due time: the receipt arrives later, never lost. A duplicate event
  only marks the same row again; a receipt is keyed by the bank's transaction (unique per
  consent), so it is pushed once whatever repeats.

Every receipt's view is sealed under the consent's data key (shredded with the consent).
Whether an account's receipts go out is checked at every pass: the consent must still allow
``transactions`` (consent.domain.consent.can_read) and the account's receipts be on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.banks.client import BankCallError, BankClient
from consent.domain import consent as rules
from consent.domain.handles import opaque_id
from consent.domain.minimize import is_card_payment, receipt_fields, receipt_view
from consent.domain.policy import allowed_fields
from consent.domain.scopes import Scope
from consent.domain.views import View
from consent.outbox.write import enqueue
from consent.receipts.choices import is_quiet, receipts_since
from consent.service.broker import Broker
from consent.service.errors import BrokerError
from consent.service.linking import PURPOSE, to_domain
from consent.service.reads import _with_token
from consent.store import audit
from consent.store.tables import (
    AccountHandle,
    ConsentRow,
    QuietHours,
    ReceiptRow,
    ReceiptWork,
)
from consent.vault.envelope import open_sealed, seal

log = logging.getLogger(__name__)
MARGIN = timedelta(minutes=2)  # the bank's clock and booking times may lag the event a little
MAX_PAGES = 10
PER_MESSAGE = 20  # receipts in one message; a larger burst becomes several messages
BATCH = 50
PARALLEL = 8
LEASE_MARGIN = timedelta(seconds=30)  # a claim lasts the fetch timeout plus this


def _backoff(attempts: int, rng: random.Random) -> timedelta:
    return timedelta(seconds=0.5 + rng.uniform(0, min(60.0, 0.5 * 2**attempts)))


def _field(receipt_id: str) -> str:
    return f"receipt:{receipt_id}"


def _is_summary(message_key: str) -> bool:
    return message_key.startswith(SUMMARY_PREFIX)


RECEIPT_PREFIX, SUMMARY_PREFIX = "rcm_", "rcs_"  # message keys: receipts, quiet-hours summary


def _booked_at(tx: dict[str, Any], fallback: datetime) -> datetime:
    raw = tx.get("BookingDateTime")
    try:
        at = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def totals(views: Sequence[View]) -> dict[str, str]:
    """Money out per currency over ``views`` (reversed ones left out), in Decimal."""
    out: dict[str, Decimal] = {}
    for v in views:
        amount, currency = v.get("amount"), v.get("currency")
        if v.get("status") == "reversed" or not isinstance(amount, str):
            continue
        if isinstance(currency, str):
            out[currency] = out.get(currency, Decimal(0)) + Decimal(amount)
    return {c: str(t) for c, t in sorted(out.items())}


class ReceiptWorker:
    def __init__(
        self,
        broker: Broker,
        wake_relay: Callable[[], None],
        rng: random.Random | None = None,
    ) -> None:
        self.broker = broker
        self.wake_relay = wake_relay
        self.rng = rng or random.Random()
        self.pushed = 0  # receipts written to the outbox, for tests and the health page
        self._leases = broker.engine.dialect.name == "postgresql"
        self._lease = timedelta(seconds=broker.settings.receipt_fetch_timeout_s) + LEASE_MARGIN

    async def run_forever(self) -> None:
        """Wait for an event (or ``receipt_idle_s`` for retries and the end of quiet hours),
        wait the bundle window, then start every due account that is not already being
        fetched, without waiting for them: one slow bank never holds up another's receipts."""
        broker = self.broker
        settings = broker.settings
        busy: dict[str, asyncio.Task[int]] = {}
        gate = asyncio.Semaphore(PARALLEL)

        async def one(handle: str, lease: datetime | None) -> int:
            try:
                async with gate:
                    queued = await self._account(handle, lease)
                if queued:
                    self.wake_relay()
                return queued
            except Exception:
                log.exception("receipts of an account failed; retrying")
                return 0
            finally:
                busy.pop(handle, None)

        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
            # arrives as the wake-up fires, and the worker would never stop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.receipt_idle_s):
                    await broker.receipt_wake.wait()
            broker.receipt_wake.clear()
            if settings.receipt_bundle_s:
                await asyncio.sleep(settings.receipt_bundle_s)  # the rest of a burst
            try:
                for handle, lease in await self._due(exclude=busy):
                    if handle not in busy:
                        busy[handle] = asyncio.create_task(one(handle, lease))
                if await self.release_held():
                    self.wake_relay()
            except Exception:
                log.exception("receipt pass failed; retrying")

    async def _due(self, exclude: Collection[str] = ()) -> list[tuple[str, datetime | None]]:
        """Claim due work rows (not those in ``exclude``, being fetched here): each handle with
        the lease written for it on PostgreSQL (None on SQLite, one process)."""
        now = self.broker.clock()
        query = select(ReceiptWork).where(col(ReceiptWork.due_at) <= now)
        if exclude:
            query = query.where(col(ReceiptWork.handle).not_in(sorted(exclude)))
        query = query.order_by(col(ReceiptWork.due_at)).limit(BATCH)
        if not self._leases:
            async with self.broker.sessions() as session:
                return [(w.handle, None) for w in (await session.exec(query)).all()]
        query = query.where(
            or_(col(ReceiptWork.claimed_until).is_(None), col(ReceiptWork.claimed_until) <= now)
        ).with_for_update(skip_locked=True)
        async with self.broker.sessions() as session:
            found = list((await session.exec(query)).all())
            if not found:
                return []
            lease = now + self._lease
            for work in found:
                work.claimed_until = lease
                session.add(work)
            claimed: list[tuple[str, datetime | None]] = [(w.handle, lease) for w in found]
            await session.commit()
            return claimed

    def _owns(self, work: ReceiptWork | None, lease: datetime | None) -> bool:
        """Whether this process still holds its claim on ``work`` (always, on SQLite)."""
        return work is not None and (not self._leases or work.claimed_until == lease)

    async def run_once(self) -> int:
        """Fetch for every due account and wait for them, then release held receipts whose
        quiet hours ended; returns how many messages were queued."""
        due = await self._due()
        gate = asyncio.Semaphore(PARALLEL)

        async def one(handle: str, lease: datetime | None) -> int:
            async with gate:
                return await self._account(handle, lease)

        queued = sum(await asyncio.gather(*(one(h, lease) for h, lease in due)))
        queued += await self.release_held()
        if queued:
            self.wake_relay()
        return queued

    # --- one account ---------------------------------------------------------------------
    async def _account(self, handle: str, lease: datetime | None = None) -> int:
        broker = self.broker
        now = broker.clock()
        async with broker.sessions() as session:
            work = await session.get(ReceiptWork, handle)
            if work is None or not self._owns(work, lease):
                return 0
            row = await session.get(ConsentRow, work.consent_id)
            start = await self._allowed(session, row, handle) if row is not None else None
            if row is None or start is None:
                await self._drop(handle, lease)
                return 0
            version, attempts = work.version, work.attempts
            key = await broker.data_key(session, row.consent_id)
            ref = await session.get(AccountHandle, handle)
            if key is None or ref is None:
                await self._drop(handle, lease)
                return 0
            account_id = open_sealed(
                key, ref.account_ref, consent_id=row.consent_id, field="account_id"
            ).decode()
            pending = (
                await session.exec(
                    select(ReceiptRow).where(
                        ReceiptRow.handle == handle, ReceiptRow.status == "pending"
                    )
                )
            ).all()
            since = min([work.seen_until or now, *(p.at for p in pending)]) - MARGIN
            try:
                async with asyncio.timeout(broker.settings.receipt_fetch_timeout_s):
                    items, complete = await self._fetch(session, row, account_id, since)
                await session.commit()  # a refreshed bank token, if any
            except (BrokerError, BankCallError, TimeoutError) as e:
                await session.rollback()
                log.info("receipt fetch failed (%s); retrying later", type(e).__name__)
                await self._later(handle, attempts + 1, lease)
                return 0
        try:
            return await self._apply(
                row, handle, key, (version, lease), items, complete, since, start
            )
        except IntegrityError:
            # another broker process pushed these receipts first: nothing is lost or doubled
            log.info("receipts of an account were pushed by another process")
            return 0

    async def _allowed(
        self, session: AsyncSession, row: ConsentRow, handle: str
    ) -> datetime | None:
        """Since when the account's receipts go out, if the consent still allows
        ``transactions`` and they are on; else None."""
        broker = self.broker
        policy = broker.policies.get(row.bank_id)
        if policy is None:
            return None
        decision = rules.can_read(to_domain(row), Scope.TRANSACTIONS, policy, broker.clock())
        return await receipts_since(session, row.consent_id, handle) if decision.allowed else None

    async def _fetch(
        self, session: AsyncSession, row: ConsentRow, account_id: str, since: datetime
    ) -> tuple[list[dict[str, Any]], bool]:
        """The account's transactions booked since ``since``, oldest first; and whether the
        listing is complete (every page read)."""
        items: list[dict[str, Any]] = []
        params = {"fromBookingDateTime": since.isoformat(timespec="seconds")}
        for page in range(1, MAX_PAGES + 1):

            async def call(bank: BankClient, token: str, page: int = page) -> dict[str, Any]:
                return await bank.read(
                    token, f"/accounts/{account_id}/transactions", {**params, "page": str(page)}
                )

            body = await _with_token(self.broker, session, row, call)
            found = body.get("Data", {}).get("Transaction", [])
            items.extend(t for t in found if isinstance(t, dict))
            if "Next" not in body.get("Links", {}):
                return items[::-1], True
        return items[::-1], False

    async def _locked(self, session: AsyncSession, handle: str) -> ReceiptWork | None:
        """The work row, locked till the end of the transaction on PostgreSQL."""
        query = select(ReceiptWork).where(ReceiptWork.handle == handle)
        if self._leases:
            query = query.with_for_update()
        return (await session.exec(query)).first()

    async def _later(self, handle: str, attempts: int, lease: datetime | None = None) -> None:
        broker = self.broker
        async with broker.writes(), broker.sessions() as session:
            work = await self._locked(session, handle)
            if work is not None and self._owns(work, lease):
                work.attempts = attempts
                work.due_at = broker.clock() + _backoff(attempts, self.rng)
                work.claimed_until = None
                session.add(work)
                await session.commit()

    async def _drop(self, handle: str, lease: datetime | None = None) -> None:
        async with self.broker.writes(), self.broker.sessions() as session:
            query = delete(ReceiptWork).where(col(ReceiptWork.handle) == handle)
            if self._leases:
                query = query.where(col(ReceiptWork.claimed_until) == lease)
            await session.exec(query)
            await session.commit()

    async def _apply(
        self,
        row: ConsentRow,
        handle: str,
        key: bytes,
        claim: tuple[int, datetime | None],
        items: list[dict[str, Any]],
        complete: bool,
        since: datetime,
        start: datetime,
    ) -> int:
        broker = self.broker
        now = broker.clock()
        secret = broker.handle_secret
        fields = receipt_fields(
            allowed_fields("transaction", broker.policy(row.bank_id), broker.contract)
        )
        cid = row.consent_id
        earliest = start.replace(microsecond=0)  # banks give booking times to the second

        def sealed(view: View, receipt_id: str) -> bytes:
            return seal(key, json.dumps(view).encode(), consent_id=cid, field=_field(receipt_id))

        version, lease = claim
        async with broker.writes(), broker.sessions() as session:
            # the claim is checked, and the row locked, before anything is written: a process
            # that lost its claim (stalled past the lease) leaves the work to the new claimant
            work = await self._locked(session, handle)
            if not self._owns(work, lease):
                log.info("the claim on an account's receipts ran out; left to its new claimant")
                return 0
            quiet = is_quiet(await session.get(QuietHours, row.subject_id), now)
            known = {
                r.tx_key: r
                for r in (
                    await session.exec(
                        select(ReceiptRow).where(
                            ReceiptRow.handle == handle, col(ReceiptRow.at) >= since
                        )
                    )
                ).all()
            }
            listed: set[str] = set()
            fresh: list[View] = []
            edited: set[str] = set()
            newest = since
            for tx in items:
                at = _booked_at(tx, now)
                newest = max(newest, at)
                if not is_card_payment(tx) or at < earliest or at > now + MARGIN:
                    continue  # before receipts were on, or booked "in the future"
                bank_tx = str(tx.get("TransactionId", ""))
                tx_key = opaque_id(secret, cid, "receipt-tx", bank_tx)
                listed.add(tx_key)
                status = "pending" if tx.get("Status") == "Pending" else "booked"
                existing = known.get(tx_key)
                if existing is None:
                    receipt_id = f"rct_{opaque_id(secret, 'receipt', cid, bank_tx)}"
                    view = receipt_view(
                        tx,
                        receipt_id=receipt_id,
                        account_handle=handle,
                        status=status,
                        fields=fields,
                    )
                    fresh.append(view)
                    receipt = ReceiptRow(
                        receipt_id=receipt_id,
                        consent_id=cid,
                        subject_id=row.subject_id,
                        handle=handle,
                        tx_key=tx_key,
                        status=status,
                        blob=sealed(view, receipt_id),
                        at=at,
                    )
                    known[tx_key] = receipt
                    session.add(receipt)
                elif existing.status == "pending" and status == "booked":
                    self._restatus(existing, "booked", key, sealed)
                    session.add(existing)
                    if existing.message_key:
                        edited.add(existing.message_key)
            if complete:
                for tx_key, receipt in known.items():
                    if receipt.status == "pending" and tx_key not in listed:
                        self._restatus(receipt, "reversed", key, sealed)
                        session.add(receipt)
                        if receipt.message_key:
                            edited.add(receipt.message_key)
            queued = 0
            if fresh and not quiet:
                for first in range(0, len(fresh), PER_MESSAGE):
                    chunk = fresh[first : first + PER_MESSAGE]
                    message_key = f"{RECEIPT_PREFIX}{uuid.uuid4().hex[:24]}"
                    ids = {v.get("receipt_id") for v in chunk}
                    for receipt in known.values():
                        if receipt.receipt_id in ids:
                            receipt.message_key = message_key
                    self._push(session, row, "receipt", message_key, chunk, now, edit=False)
                    queued += 1
            await session.flush()
            for message_key in sorted(edited):
                views = await self._views_of(session, message_key)
                if not views:
                    continue
                if _is_summary(message_key):  # the whole summary again, every consent's part
                    extra = {"count": len(views), "totals": totals(views)}
                    self._push(
                        session,
                        row,
                        "receipt_summary",
                        message_key,
                        views[-PER_MESSAGE:],
                        now,
                        edit=True,
                        extra=extra,
                    )
                else:
                    self._push(session, row, "receipt", message_key, views, now, edit=True)
                queued += 1
            if queued:
                await audit.record(
                    session,
                    subject_id=row.subject_id,
                    client_id=row.client_id,
                    action="push.receipt",
                    scope="transactions",
                    purpose=PURPOSE,
                    fields=sorted(fields),
                    outcome="allowed",
                    reason="ok",
                    at=now,
                )
            if work is not None:
                if work.version == version:
                    await session.delete(work)
                else:  # another event came while fetching: look again now
                    work.seen_until = max(work.seen_until or newest, newest)
                    work.attempts = 0
                    work.due_at = now
                    work.claimed_until = None
                    session.add(work)
                    broker.receipt_wake.set()
            await session.commit()
        self.pushed += len(fresh)
        return queued

    @staticmethod
    def _restatus(
        receipt: ReceiptRow, status: str, key: bytes, sealed: Callable[[View, str], bytes]
    ) -> None:
        view: View = json.loads(
            open_sealed(
                key, receipt.blob, consent_id=receipt.consent_id, field=_field(receipt.receipt_id)
            )
        )
        if "status" in view:
            view["status"] = status
        receipt.status = status
        receipt.blob = sealed(view, receipt.receipt_id)

    async def _views_of(self, session: AsyncSession, message_key: str) -> list[View]:
        """Every receipt a message shows, oldest first, each opened with its own consent's
        key (a summary covers all of a subject's consents); a shredded consent's are gone."""
        rows = (
            await session.exec(
                select(ReceiptRow)
                .where(ReceiptRow.message_key == message_key)
                .order_by(col(ReceiptRow.at), col(ReceiptRow.receipt_id))
            )
        ).all()
        views: list[View] = []
        for r in rows:
            key = await self.broker.data_key(session, r.consent_id)
            if key is not None:
                blob = open_sealed(key, r.blob, consent_id=r.consent_id, field=_field(r.receipt_id))
                views.append(json.loads(blob))
        return views

    @staticmethod
    def _push(
        session: AsyncSession,
        row: ConsentRow,
        kind: str,
        message_key: str,
        views: list[View],
        now: datetime,
        *,
        edit: bool,
        extra: dict[str, Any] | None = None,
    ) -> None:
        enqueue(
            session,
            client_id=row.client_id,
            subject_id=row.subject_id,
            kind=kind,
            data={"message": message_key, "edit": edit, "receipts": views, **(extra or {})},
            now=now,
        )

    # --- quiet hours -----------------------------------------------------------------------
    async def release_held(self) -> int:
        """One summary per subject whose quiet hours have ended, with the receipts held."""
        broker = self.broker
        now = broker.clock()
        async with broker.sessions() as session:
            held = (
                await session.exec(
                    select(ReceiptRow.subject_id)
                    .where(col(ReceiptRow.message_key).is_(None))
                    .distinct()
                )
            ).all()
            ready = [s for s in held if not is_quiet(await session.get(QuietHours, s), now)]
        queued = 0
        for subject_id in ready:
            queued += await self._summary(subject_id)
        return queued

    async def _summary(self, subject_id: str) -> int:
        broker = self.broker
        now = broker.clock()
        async with broker.writes(), broker.sessions() as session:
            rows = (
                await session.exec(
                    select(ReceiptRow)
                    .where(
                        ReceiptRow.subject_id == subject_id,
                        col(ReceiptRow.message_key).is_(None),
                    )
                    .order_by(col(ReceiptRow.at), col(ReceiptRow.receipt_id))
                    # another process summing them up holds them: it sends the summary
                    .with_for_update(skip_locked=True)
                )
            ).all()
            views: list[View] = []
            consent: ConsentRow | None = None
            message_key = f"{SUMMARY_PREFIX}{uuid.uuid4().hex[:24]}"
            for r in rows:
                key = await broker.data_key(session, r.consent_id)
                owner = await session.get(ConsentRow, r.consent_id)
                if key is None or owner is None:
                    await session.delete(r)
                    continue
                consent = consent or owner
                views.append(
                    json.loads(
                        open_sealed(
                            key, r.blob, consent_id=r.consent_id, field=_field(r.receipt_id)
                        )
                    )
                )
                r.message_key = message_key
                session.add(r)
            if consent is not None and views:
                self._push(
                    session,
                    consent,
                    "receipt_summary",
                    message_key,
                    views[-PER_MESSAGE:],
                    now,
                    edit=False,
                    extra={"count": len(views), "totals": totals(views)},
                )
                await audit.record(
                    session,
                    subject_id=subject_id,
                    client_id=consent.client_id,
                    action="push.receipt_summary",
                    scope="transactions",
                    purpose=PURPOSE,
                    fields=sorted({k for v in views for k in v}),
                    outcome="allowed",
                    reason="ok",
                    at=now,
                )
            await session.commit()
        return 1 if views else 0
