"""The accounts view: every account under the subject's consents, with what each allows.

An account is listed when its consent allows a read (balances or transactions) under the bank's
policy; its identity fields are the balance view's, cut down by the bank's balance allow-list, and
``actions`` says which reads (and card controls) the consent and the policy allow for it, so the
platform offers only those. One bank call per consent (``/accounts``), every bank at once, inside
the request's deadline; audited like every read.

A bank that fails or does not answer in time blanks only its own accounts: they are listed from
the last balances read of them (``status: last_known`` with ``read_at``, identity fields only)
where the broker has any, and the bank is named in ``unavailable`` with a typed reason.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent.banks.client import BankCallError, BankRefusedError
from consent.domain import decisions
from consent.domain.consent import can_read
from consent.domain.minimize import balance_view
from consent.domain.policy import BankPolicy, allowed_fields
from consent.domain.scopes import Scope
from consent.domain.views import ACCOUNT_FIELDS, View
from consent.service.account_handles import refreshed_token
from consent.service.balance_plan import reason
from consent.service.broker import Broker
from consent.service.deadline import DEFAULT_MS, Deadline
from consent.service.errors import BrokerError
from consent.service.planner import within
from consent.service.reads import (
    AuthorizedConsent,
    authorized_consents,
    handles_for,
    pending_entry,
)
from consent.store import last_known
from consent.store.audit_writer import PendingEntry
from consent.store.tables import PlatformClient, Subject
from consent.vault.envelope import open_sealed
from consent.vault.keyring import VaultError

log = logging.getLogger(__name__)

READ_SCOPES = (Scope.BALANCES, Scope.TRANSACTIONS)


def allowed_actions(row: AuthorizedConsent, policy: BankPolicy, now: datetime) -> list[str]:
    """What the platform may do with this consent's accounts, in a fixed order."""
    actions = []
    if can_read(row.consent, Scope.BALANCES, policy, now).allowed:
        actions.append("balances")
    if can_read(row.consent, Scope.TRANSACTIONS, policy, now).allowed:
        actions += ["transactions", "spending"]
    if actions and can_read(row.consent, Scope.CARD_CONTROLS, policy, now).allowed:
        actions.append("card_controls")
    return actions


def opened_token(broker: Broker, row: AuthorizedConsent) -> tuple[bytes | None, str | None]:
    """The consent's data key and access token, opened (None where shredded or missing)."""
    if row.kek_version is None or row.wrapped_key is None:
        return None, None
    key = broker.open_data_key(row.consent_id, row.kek_version, row.wrapped_key)
    if row.sealed_token is None:
        return key, None
    token = open_sealed(key, row.sealed_token, consent_id=row.consent_id, field="access_token")
    return key, token.decode()


Page = dict[str, Any]


async def listed_accounts(broker: Broker, row: AuthorizedConsent, deadline: Deadline) -> list[Page]:
    """The bank's account list for one consent inside ``deadline`` (an idempotent read, retried
    on a 5xx or a timeout while time lasts), refreshing a refused access token once."""
    key, token = opened_token(broker, row)
    if key is None or token is None:
        raise BrokerError(409, "consent_not_authorized", "this consent holds no usable bank token")
    bank = await broker.bank(row.bank_id)

    async def get(access_token: str) -> list[Page]:
        page = await within(
            deadline, lambda left: bank.read(access_token, "/accounts", timeout_s=left)
        )
        return list(page["Data"]["Account"])

    try:
        return await get(token)
    except BankRefusedError as e:
        if e.status != 401:
            raise
    async with broker.sessions() as session:
        fresh = await refreshed_token(broker, session, bank, row, key)
        await session.commit()
    return await get(fresh)


@dataclass(frozen=True, slots=True)
class ConsentAccounts:
    views: list[View]
    missing: str | None  # why the bank's list is not (fully) here, None when it answered
    audit_reason: str  # "ok", "last_known", or why nothing was served


async def _consent_accounts(
    broker: Broker,
    row: AuthorizedConsent,
    policy: BankPolicy,
    actions: list[str],
    fields: frozenset[str],
    deadline: Deadline,
) -> ConsentAccounts:
    extra: View = {"bank_id": row.bank_id, "actions": list(actions)}
    try:
        async with asyncio.timeout(max(0.0, deadline.remaining())):
            found = await listed_accounts(broker, row, deadline)
            handles = await handles_for(broker, row, [str(a["AccountId"]) for a in found])
    except VaultError:
        log.warning("vault refused a sealed value of consent %s", row.consent_id)
        broker.forget_consent(row.consent_id)
        return ConsentAccounts([], "vault_error", "vault_error")
    except (BankCallError, BrokerError, TimeoutError) as e:
        why = reason(e)
        kept = await _last_known_accounts(broker, row, fields, extra, why)
        return ConsentAccounts(kept, why, "last_known" if kept else why)
    views: list[View] = []
    for account, handle in zip(found, handles, strict=True):
        view = balance_view(
            account, [], bank_name=policy.display_name, account_handle=handle, fields=fields
        )
        views.append({**view, **extra, "status": "fresh"})
    return ConsentAccounts(views, None, "ok")


async def _last_known_accounts(
    broker: Broker,
    row: AuthorizedConsent,
    fields: frozenset[str],
    extra: View,
    why: str,
) -> list[View]:
    """The consent's accounts as the last balances read of them name them (identity fields
    only), each saying when that was."""
    if row.kek_version is None or row.wrapped_key is None:
        return []
    try:
        key = broker.open_data_key(row.consent_id, row.kek_version, row.wrapped_key)
        async with broker.sessions() as session:
            known = await last_known.load(session, key, row.consent_id)
    except VaultError:
        return []
    return [
        {
            **{k: v for k, v in k_view.view.items() if k in fields},
            **extra,
            "status": "last_known",
            "read_at": k_view.read_at.isoformat(),
            "reason": why,
        }
        for k_view in known.values()
    ]


@dataclass(frozen=True, slots=True)
class AccountsAnswer:
    views: list[View]
    unavailable: list[dict[str, str]]


async def accounts(
    broker: Broker,
    client: PlatformClient,
    subject: Subject,
    purpose: str,
    deadline: Deadline | None = None,
) -> AccountsAnswer:
    """Account views of every consent that allows a read, each with its allowed actions, the
    banks asked at once inside ``deadline``; a bank that left its list out is named with a
    typed reason. An answer not ready in time is logged as not served and refused (504)."""
    deadline = deadline or Deadline.within(DEFAULT_MS / 1000)
    now = broker.clock()
    answer = AccountsAnswer([], [])
    entries: list[PendingEntry] = []
    async with broker.read_lock(subject.subject_id):
        asked: list[tuple[AuthorizedConsent, BankPolicy, list[str], frozenset[str]]] = []
        for row in await authorized_consents(broker, subject.subject_id):
            policy = broker.policies.get(row.bank_id)  # None: the bank left the directory
            actions = allowed_actions(row, policy, now) if policy is not None else []
            if policy is None or not actions:
                denied = (
                    can_read(row.consent, Scope.TRANSACTIONS, policy, now).reason
                    if policy is not None
                    else decisions.SCOPE_NOT_ALLOWED_BY_BANK  # no policy: no sharing
                )
                entries.append(
                    pending_entry(
                        client,
                        subject.subject_id,
                        action="read.accounts",
                        scope=None,
                        purpose=purpose,
                        fields=[],
                        outcome="denied",
                        reason=denied,
                        at=now,
                    )
                )
                continue
            fields = ACCOUNT_FIELDS & (
                allowed_fields("balance", policy, broker.contract) | {"account_handle"}
            )
            asked.append((row, policy, actions, fields))
        banks = deadline.for_banks()
        got = await asyncio.gather(
            *(_consent_accounts(broker, r, p, a, f, banks) for r, p, a, f in asked)
        )
        late = deadline.expired()
        for (row, policy, actions, fields), one in zip(asked, got, strict=True):
            answer.views.extend(one.views)
            if one.missing is not None:
                answer.unavailable.append(
                    {
                        "consent_id": row.consent_id,
                        "bank_id": row.bank_id,
                        "bank_name": policy.display_name,
                        "reason": one.missing,
                    }
                )
            served = bool(one.views) or one.missing is None
            entries.append(
                pending_entry(
                    client,
                    subject.subject_id,
                    action="read.accounts",
                    scope="balances" if "balances" in actions else "transactions",
                    purpose=purpose,
                    fields=sorted(fields | {"bank_id", "actions", "status"})
                    if served and not late
                    else [],
                    outcome="allowed" if served and not late else "denied",
                    reason="deadline_exceeded" if late else one.audit_reason,
                    at=now,
                )
            )
        await broker.audit(entries)  # committed before anything is answered
    if late:
        raise BrokerError(504, "deadline_exceeded", "the answer was not ready in time")
    return answer
