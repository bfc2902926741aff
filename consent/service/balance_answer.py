"""One consent's part of the balances answer, inside the deadline: fresh views of the accounts
its bank gave, the last known balance (labelled with when it was read) of those it did not,
and a typed reason for what is still missing. The last known balances are kept sealed
(:mod:`consent.store.last_known`), written only when they change or grow old."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from consent.domain.minimize import balance_view
from consent.domain.policy import BankPolicy, allowed_fields
from consent.domain.views import View
from consent.service import account_handles
from consent.service.balance_plan import Fetched, fetch_balances, reason
from consent.service.broker import Broker
from consent.service.deadline import Deadline
from consent.service.errors import BrokerError
from consent.store import last_known
from consent.vault.keyring import VaultError

log = logging.getLogger(__name__)


class SealedConsent(Protocol):
    """An authorized consent as the balances read loads it, with its sealed key and token."""

    @property
    def consent_id(self) -> str: ...

    @property
    def bank_id(self) -> str: ...

    @property
    def kek_version(self) -> int | None: ...

    @property
    def wrapped_key(self) -> bytes | None: ...

    @property
    def sealed_token(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class ConsentBalances:
    views: list[View]
    fields: frozenset[str]
    missing: str | None  # the reason some account (or the whole bank) is left out
    audit_reason: str  # "ok", "last_known", "partial" or, when nothing was served, why

    @property
    def served(self) -> bool:
        """Whether the platform gets this consent's part of the answer (even an empty one)."""
        return bool(self.views) or self.missing is None


async def consent_balances(
    broker: Broker, row: SealedConsent, policy: BankPolicy, deadline: Deadline
) -> ConsentBalances:
    """Fresh where the bank answered in time, last known where it did not, else a reason
    (``vault_error`` when a sealed value of the consent does not open: that consent only)."""
    fields = allowed_fields("balance", policy, broker.contract)
    try:
        return await _consent_balances(broker, row, policy, deadline, fields)
    except VaultError:
        # A sealed value that does not open (moved from another consent's row, or tampered
        # with) spoils this consent only: one line in the log, a typed error in the answer.
        log.warning("vault refused a sealed value of consent %s", row.consent_id)
        broker.forget_consent(row.consent_id)
        return ConsentBalances([], fields, "vault_error", "vault_error")


async def _consent_balances(
    broker: Broker,
    row: SealedConsent,
    policy: BankPolicy,
    deadline: Deadline,
    fields: frozenset[str],
) -> ConsentBalances:
    key = _data_key(broker, row)
    handles: dict[str, str] = {}
    try:
        if broker.has_bank(row.bank_id) and row.consent_id in broker.handles:
            # the usual read: the bank calls end with the deadline on their own, and the rarer
            # steps that might wait (a token refresh, new accounts' handles) are bounded each
            fetched, handles = await _fresh_with_handles(broker, row, key, deadline)
        else:  # the first read (the bank directory, the handles from the database)
            async with _bounded(deadline):
                fetched, handles = await _fresh_with_handles(broker, row, key, deadline)
    except (BrokerError, TimeoutError) as e:
        fetched = Fetched(None, {}, e)
    now = broker.clock()
    fresh: dict[str, View] = {}
    for account in fetched.accounts or []:
        page = fetched.balances.get(str(account["AccountId"]))
        handle = handles.get(str(account["AccountId"]))
        if page is not None and handle is not None:
            view = balance_view(
                account, page, bank_name=policy.display_name, account_handle=handle, fields=fields
            )
            fresh[handle] = view
    if key is not None and fresh:
        await _remember(broker, row.consent_id, key, fresh, now)
    views = [{**v, "status": "fresh"} for v in fresh.values()]
    if fetched.complete and fetched.failure is None:
        return ConsentBalances(views, fields, None, "ok")
    why = reason(fetched.failure)
    known = await _last_known(broker, row.consent_id, key)
    wanted = list(handles.values()) if fetched.accounts is not None else list(known)
    stale = [h for h in wanted if h not in fresh and h in known]
    for h in stale:
        kept = {k: v for k, v in known[h].view.items() if k in fields}
        views.append(
            {**kept, "status": "last_known", "read_at": known[h].read_at.isoformat(), "reason": why}
        )
    lost = any(h not in fresh and h not in known for h in wanted) or not wanted
    if not views:
        return ConsentBalances([], fields, why, why)
    return ConsentBalances(
        views, fields, why if lost else None, "last_known" if stale else "partial"
    )


def _data_key(broker: Broker, row: SealedConsent) -> bytes | None:
    if row.kek_version is None or row.wrapped_key is None:
        return None
    return broker.open_data_key(row.consent_id, row.kek_version, row.wrapped_key)


def _bounded(deadline: Deadline) -> asyncio.Timeout:
    """A timer for a step that must end with ``deadline`` (one that does not on its own)."""
    return asyncio.timeout(max(0.0, deadline.remaining()))


async def _fresh_with_handles(
    broker: Broker, row: SealedConsent, key: bytes | None, deadline: Deadline
) -> tuple[Fetched, dict[str, str]]:
    """The bank's answer and the handles of the accounts it lists (bank account id -> handle)."""
    fetched = await _fresh(broker, row, key, deadline)
    ids = [str(a["AccountId"]) for a in fetched.accounts or []]
    if not ids:
        return fetched, {}
    known = broker.handles.get(row.consent_id)
    if known is not None and all(a in known for a in ids):
        return fetched, {a: known[a] for a in ids}
    async with _bounded(deadline):  # new accounts: their handles are created and committed
        return fetched, dict(
            zip(ids, await account_handles.handles_for(broker, row, ids), strict=True)
        )


async def _fresh(
    broker: Broker, row: SealedConsent, key: bytes | None, deadline: Deadline
) -> Fetched:
    """The bank's answer inside ``deadline``, refreshing a refused access token once."""
    if key is None or row.sealed_token is None:
        raise BrokerError(409, "consent_not_authorized", "this consent holds no usable bank token")
    token = broker.open_token(row.consent_id, key, row.sealed_token)
    bank = await broker.bank(row.bank_id)
    known = broker.handles.get(row.consent_id)
    if known is None:
        async with broker.sessions() as session:
            known = await account_handles.known_handles(broker, session, row)
    fetched = await fetch_balances(bank, token, list(known), deadline)
    if not fetched.token_refused:
        return fetched
    # (the token endpoint's call has the bank's own timeout, not the deadline)
    async with _bounded(deadline), broker.sessions() as session:
        fresh_token = await account_handles.refreshed_token(broker, session, bank, row, key)
        await session.commit()
    return await fetch_balances(bank, fresh_token, list(known), deadline)


async def _last_known(
    broker: Broker, consent_id: str, key: bytes | None
) -> dict[str, last_known.Known]:
    if key is None:
        return {}
    async with broker.sessions() as session:
        return await last_known.load(session, key, consent_id)


async def _remember(
    broker: Broker, consent_id: str, key: bytes, fresh: dict[str, View], now: datetime
) -> None:
    """Keep the fresh views as the accounts' last known balances (when changed or old)."""
    due = [(h, v) for h, v in fresh.items() if broker.saved_balances.due(h, v, now)]
    if not due:
        return
    async with broker.sessions() as session:
        await last_known.save(session, key, consent_id, [(h, v, now) for h, v in due])
        await session.commit()
    for h, v in due:
        broker.saved_balances.mark(h, v, now)
