"""The accounts view: every account under the subject's consents, with what each allows.

An account is listed when its consent allows a read (balances or transactions) under the bank's
policy; its identity fields are the balance view's, cut down by the bank's balance allow-list, and
``actions`` says which reads (and card controls) the consent and the policy allow for it, so the
platform offers only those. One bank call per consent (``/accounts``); audited like every read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consent.banks.client import BankClient
from consent.domain.consent import can_read
from consent.domain.minimize import balance_view
from consent.domain.policy import BankPolicy, allowed_fields
from consent.domain.scopes import Scope
from consent.domain.views import ACCOUNT_FIELDS, View
from consent.service.broker import Broker
from consent.service.reads import (
    AuthorizedConsent,
    _bank_call,
    authorized_consents,
    handles_for,
    pending_entry,
)
from consent.store.audit_writer import PendingEntry
from consent.store.tables import PlatformClient, Subject
from consent.vault.envelope import open_sealed

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


async def _fetch_accounts(bank: BankClient, token: str) -> list[dict[str, Any]]:
    return list((await bank.read(token, "/accounts"))["Data"]["Account"])


async def accounts(
    broker: Broker, client: PlatformClient, subject: Subject, purpose: str
) -> list[View]:
    """Account views of every consent that allows a read, each with its allowed actions."""
    now = broker.clock()
    views: list[View] = []
    entries: list[PendingEntry] = []
    async with broker.read_lock(subject.subject_id):
        for row in await authorized_consents(broker, subject.subject_id):
            policy = broker.policy(row.bank_id)
            actions = allowed_actions(row, policy, now)
            if not actions:
                reason = can_read(row.consent, Scope.TRANSACTIONS, policy, now).reason
                entries.append(
                    pending_entry(
                        client,
                        subject.subject_id,
                        action="read.accounts",
                        scope=None,
                        purpose=purpose,
                        fields=[],
                        outcome="denied",
                        reason=reason,
                        at=now,
                    )
                )
                continue
            fields = ACCOUNT_FIELDS & (
                allowed_fields("balance", policy, broker.contract) | {"account_handle"}
            )
            key, token = opened_token(broker, row)
            found = await _bank_call(broker, row, key, token, _fetch_accounts)
            handles = await handles_for(broker, row, [str(a["AccountId"]) for a in found])
            for account, handle in zip(found, handles, strict=True):
                view = balance_view(
                    account, [], bank_name=policy.display_name, account_handle=handle, fields=fields
                )
                views.append({**view, "bank_id": row.bank_id, "actions": list(actions)})
            entries.append(
                pending_entry(
                    client,
                    subject.subject_id,
                    action="read.accounts",
                    scope="balances" if "balances" in actions else "transactions",
                    purpose=purpose,
                    fields=sorted(fields | {"bank_id", "actions"}),
                    outcome="allowed",
                    reason="ok",
                    at=now,
                )
            )
        await broker.audit(entries)  # committed before anything is answered
    return views
