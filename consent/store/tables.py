"""The broker's tables. Bank tokens, PKCE verifiers and bank account ids are stored only sealed
(see :mod:`consent.vault`); deleting a consent's ``consent_key`` row shreds all of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Dialect, Index, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from consent.domain.scopes import Scope, scopes_from_text, scopes_to_text


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ScopeSet(TypeDecorator[frozenset[Scope]]):
    """A consent's scopes: a ``frozenset`` of :class:`Scope` in Python, their values
    comma-separated in the column (the schema is unchanged)."""

    impl = String(200)
    cache_ok = True

    def process_bind_param(self, value: frozenset[Scope] | None, dialect: Dialect) -> str | None:
        return scopes_to_text(value) if value is not None else None

    def process_result_value(self, value: Any, dialect: Dialect) -> frozenset[Scope] | None:
        return scopes_from_text(value) if value is not None else None


def _ts() -> Column[datetime]:
    return Column(UTCDateTime(), nullable=False)


def _ts_null() -> Column[datetime]:
    return Column(UTCDateTime(), nullable=True)


class PlatformClient(SQLModel, table=True):
    """A chat platform allowed to call the broker (the bot); its credential is stored hashed."""

    __tablename__ = "platform_client"
    client_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    secret_hash: str = Field(max_length=64)
    webhook_url: str | None = Field(default=None, max_length=2000)
    # up to this many outbox messages in one signed POST ({"events": [...]}); 1: one message per
    # POST, today's body (consent.outbox.relay)
    webhook_batch_max: int = Field(default=1, sa_column_kwargs={"server_default": text("1")})
    webhook_secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # sealed
    kek_version: int
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # seals the secret
    created_at: datetime = Field(sa_column=_ts())


class Subject(SQLModel, table=True):
    """A person as the broker knows them: an opaque id, owned by the client that created it."""

    __tablename__ = "subject"
    subject_id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(foreign_key="platform_client.client_id", index=True, max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class ConsentRow(SQLModel, table=True):
    """A consent (domain fields) and the bank's consent id."""

    __tablename__ = "consent"
    consent_id: str = Field(primary_key=True, max_length=64)
    subject_id: str = Field(foreign_key="subject.subject_id", index=True, max_length=64)
    client_id: str = Field(max_length=64)
    bank_id: str = Field(max_length=40)
    scopes: frozenset[Scope] = Field(sa_column=Column(ScopeSet(), nullable=False))
    purpose: str = Field(max_length=40)
    status: str = Field(max_length=32, index=True)
    created_at: datetime = Field(sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())
    authorized_at: datetime | None = Field(default=None, sa_column=_ts_null())
    ended_at: datetime | None = Field(default=None, sa_column=_ts_null())
    bank_consent_id: str | None = Field(default=None, index=True, max_length=128)
    state: str = Field(index=True, unique=True, max_length=64)  # OAuth state of the link
    renewal_noticed: bool = False
    # the bank refused the refresh token (invalid_grant): the user must link the bank again
    needs_reauthorization: bool = False


class ConsentKey(SQLModel, table=True):
    """A consent's data key, wrapped by a KEK version. Deleted on revoke/expire (shredding)."""

    __tablename__ = "consent_key"
    consent_id: str = Field(primary_key=True, foreign_key="consent.consent_id", max_length=64)
    kek_version: int
    wrapped: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SealedSecret(SQLModel, table=True):
    """One sealed value of a consent: bank tokens, the PKCE verifier."""

    __tablename__ = "sealed_secret"
    __table_args__ = (UniqueConstraint("consent_id", "field"),)
    id: int | None = Field(default=None, primary_key=True)
    consent_id: str = Field(foreign_key="consent.consent_id", index=True, max_length=64)
    field: str = Field(max_length=40)
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AccountHandle(SQLModel, table=True):
    """The opaque handle the platform sees for one bank account of one consent."""

    __tablename__ = "account_handle"
    handle: str = Field(primary_key=True, max_length=40)
    consent_id: str = Field(foreign_key="consent.consent_id", index=True, max_length=64)
    account_ref: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # sealed AccountId


class LastBalance(SQLModel, table=True):
    """The last balance view the broker read for one account, sealed under the consent's data
    key (associated data binds it to the consent and the account handle): served, labelled
    with ``read_at``, when the bank does not answer in time. Shredded with the data key."""

    __tablename__ = "last_balance"
    handle: str = Field(primary_key=True, foreign_key="account_handle.handle", max_length=40)
    consent_id: str = Field(foreign_key="consent.consent_id", index=True, max_length=64)
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # sealed view (JSON)
    read_at: datetime = Field(sa_column=_ts())


class BankRegistration(SQLModel, table=True):
    """The broker's client registration at one bank."""

    __tablename__ = "bank_registration"
    bank_id: str = Field(primary_key=True, max_length=40)
    client_id: str = Field(max_length=100)
    client_secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # sealed
    kek_version: int
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # seals the secret
    issuer: str = Field(max_length=2000)


class AuditRow(SQLModel, table=True):
    """One access-log entry, hash-chained per subject (see consent.domain.audit)."""

    __tablename__ = "audit_entry"
    __table_args__ = (UniqueConstraint("subject_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    subject_id: str = Field(index=True, max_length=64)
    seq: int
    client_id: str = Field(max_length=64)
    action: str = Field(max_length=40)
    scope: str | None = Field(default=None, max_length=40)
    purpose: str = Field(max_length=80)
    fields: str = Field(max_length=500)  # comma-separated
    outcome: str = Field(max_length=10)
    reason: str = Field(max_length=60)
    at: datetime = Field(sa_column=_ts())
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)


class ProcessedEvent(SQLModel, table=True):
    """A bank event already handled (its ``jti``, unique per bank: two banks may pick the same
    one): replays are recognised and ignored."""

    __tablename__ = "processed_event"
    bank_id: str = Field(primary_key=True, max_length=40)
    jti: str = Field(primary_key=True, max_length=100)
    received_at: datetime = Field(sa_column=_ts())


class OutboxRow(SQLModel, table=True):
    """A message for a platform client, written in the same transaction as what caused it and
    delivered by the relay until acknowledged."""

    __tablename__ = "outbox"
    # the relay's claim reads the undelivered rows only (migrations 0010, 0012)
    __table_args__ = (
        Index(
            "ix_outbox_pending_due",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL"),
        ),
        Index(
            "ix_outbox_pending_subject",
            "subject_id",
            "created_at",
            postgresql_where=text("delivered_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL"),
        ),
        # the claim's order: it stops after its batch, however long the backlog (0012)
        Index(
            "ix_outbox_pending_order",
            "created_at",
            "id",
            postgresql_where=text("delivered_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL"),
        ),
    )
    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(index=True, max_length=64)
    subject_id: str = Field(max_length=64)
    kind: str = Field(max_length=40)  # "fraud_alert" | "consent_authorized" | "consent_revoked" | …
    payload: str  # JSON of minimized data only
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=_ts())
    delivered_at: datetime | None = Field(default=None, sa_column=_ts_null())
    created_at: datetime = Field(sa_column=_ts())


class DeadLetterRow(SQLModel, table=True):
    """An outbox message the relay gave up on (the platform refused it for good, e.g. the user
    blocked the bot, or it kept failing): no payload, only what an operator needs to see."""

    __tablename__ = "outbox_dead_letter"
    id: str = Field(primary_key=True, max_length=64)  # the outbox message id
    client_id: str = Field(index=True, max_length=64)
    subject_id: str = Field(max_length=64)
    kind: str = Field(max_length=40)
    attempts: int
    reason: str = Field(max_length=60)
    created_at: datetime = Field(sa_column=_ts())
    failed_at: datetime = Field(sa_column=_ts())


class AlertRow(SQLModel, table=True):
    """A fraud alert shown to the platform, so its answer can go back to the right bank. One
    row per consent the bank alerted: two subjects linked to the same bank customer each get
    their own row, handle and answer."""

    __tablename__ = "fraud_alert"
    consent_id: str = Field(
        primary_key=True, foreign_key="consent.consent_id", index=True, max_length=64
    )
    alert_id: str = Field(primary_key=True, max_length=100)  # the bank's; never leaves the broker
    handle: str = Field(unique=True, index=True, max_length=100)  # what the platform is given
    answer: str | None = Field(default=None, max_length=20)


class RateBucket(SQLModel, table=True):
    """A subject's read allowance on PostgreSQL (``consent.store.ratelimit_pg``); below zero, a
    refused read was recorded and the bucket holds ``tokens + 1``. No per-user value but the
    subject's pseudonymous id."""

    __tablename__ = "rate_bucket"
    subject_id: str = Field(primary_key=True, max_length=64)
    tokens: float
    updated_s: float  # epoch seconds of the last spend


class SecurityEvent(SQLModel, table=True):
    """An operator-facing record of a refused request that concerns no subject of the caller: a
    missing or wrong credential, a probe of another client's (or a missing) resource, a purpose
    refused before any subject, a client over its rate limit. It names the route template, never
    the ids in the path, so it holds nothing about the other client's resources."""

    __tablename__ = "security_event"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    client_id: str | None = Field(default=None, max_length=64)  # None: not authenticated
    method: str = Field(max_length=10)
    route: str = Field(max_length=200)  # e.g. /v1/subjects/{subject_id}/balances
    reason: str = Field(max_length=60)


class SupportConversation(SQLModel, table=True):
    """A chat with a person at the bank, opened under a consent granted ``support``. The
    platform knows it by ``handle``; the bank's conversation id never leaves the broker."""

    __tablename__ = "support_conversation"
    handle: str = Field(primary_key=True, max_length=40)
    consent_id: str = Field(foreign_key="consent.consent_id", index=True, max_length=64)
    bank_conversation_id: str = Field(index=True, max_length=100)
    status: str = Field(max_length=16)  # waiting | active | closed
    opened_at: datetime = Field(sa_column=_ts())
    closed_at: datetime | None = Field(default=None, sa_column=_ts_null())
    rating: int | None = None


class SupportMessage(SQLModel, table=True):
    """One message (or joined/left notice) of a support conversation. Who wrote it and what it
    says are sealed under the consent's data key, so shredding the key removes the words."""

    __tablename__ = "support_message"
    __table_args__ = (UniqueConstraint("consent_id", "bank_message_id"),)
    message_id: str = Field(primary_key=True, max_length=40)  # what the platform is given
    conversation: str = Field(foreign_key="support_conversation.handle", index=True, max_length=40)
    consent_id: str = Field(foreign_key="consent.consent_id", index=True, max_length=64)
    bank_message_id: str = Field(max_length=100)
    kind: str = Field(max_length=16)  # message | joined | left
    role: str = Field(max_length=24)  # customer | bank_representative
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # {"name", "text"}
    at: datetime = Field(sa_column=_ts())


class ReceiptChoice(SQLModel, table=True):
    """Whether new card payments on an account reach the chat as receipts: per account handle,
    or ``*`` for the consent's default (chosen in /link). A preference, no financial value."""

    __tablename__ = "receipt_choice"
    consent_id: str = Field(primary_key=True, foreign_key="consent.consent_id", max_length=64)
    account: str = Field(primary_key=True, max_length=40)  # an account handle, or "*"
    enabled: bool
    since: datetime = Field(sa_column=_ts())  # payments booked before this get no receipt


class ReceiptWork(SQLModel, table=True):
    """An account whose transactions changed at the bank (its event arrived): the receipt
    worker fetches what changed once ``due_at`` comes (events within the bundle window become
    one fetch) and retries with backoff while the bank fails; the row stays until done. With
    several broker processes (PostgreSQL) one claims it at a time (``claimed_until``)."""

    __tablename__ = "receipt_work"
    handle: str = Field(primary_key=True, foreign_key="account_handle.handle", max_length=40)
    consent_id: str = Field(foreign_key="consent.consent_id", index=True, max_length=64)
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    version: int = 0  # bumped by every event; the worker clears the row only if unchanged
    attempts: int = 0
    seen_until: datetime | None = Field(default=None, sa_column=_ts_null())  # newest fetched
    # on PostgreSQL, the lease of the broker process fetching it (none claims it till then)
    claimed_until: datetime | None = Field(default=None, sa_column=_ts_null())


class ReceiptRow(SQLModel, table=True):
    """One receipt the broker pushed (or holds through quiet hours): its minimized view sealed
    under the consent's data key (shredded with it), the key of the chat message that shows it
    (so a payment that books or is reversed edits that message), and its status."""

    __tablename__ = "receipt"
    __table_args__ = (UniqueConstraint("consent_id", "tx_key"),)
    receipt_id: str = Field(primary_key=True, max_length=40)  # opaque, what the platform sees
    consent_id: str = Field(foreign_key="consent.consent_id", index=True, max_length=64)
    subject_id: str = Field(index=True, max_length=64)
    handle: str = Field(max_length=40)
    tx_key: str = Field(max_length=40)  # one-way id of the bank's transaction id
    status: str = Field(max_length=10)  # pending | booked | reversed
    message_key: str | None = Field(default=None, index=True, max_length=40)  # None: held
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # sealed view (JSON)
    at: datetime = Field(sa_column=_ts())  # booking time at the bank


class QuietHours(SQLModel, table=True):
    """A subject's quiet hours for receipts (local clock times and zone): receipts wait and
    arrive as one summary when they end. A preference, no financial value."""

    __tablename__ = "receipt_quiet_hours"
    subject_id: str = Field(primary_key=True, foreign_key="subject.subject_id", max_length=64)
    start_minute: int  # minutes after local midnight
    end_minute: int
    timezone: str = Field(max_length=64)
