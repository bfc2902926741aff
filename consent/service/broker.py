"""The broker's shared resources and its registrations at the banks."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.banks.client import (
    BankClient,
    BankInfo,
    BankUnavailableError,
    Credentials,
    fetch_directory,
)
from consent.domain.policy import BankPolicy, PlatformContract, load_policies
from consent.metrics import bank_call_observer
from consent.service.cache import TTLCache
from consent.service.errors import BrokerError
from consent.service.ratelimit import Limits, TokenBuckets
from consent.settings import BrokerSettings
from consent.store.audit_writer import AuditNotRecordedError, AuditWriter, PendingEntry
from consent.store.fastread import Reader
from consent.store.last_known import Saved
from consent.store.locks import SubjectLocks
from consent.store.secrets import data_key as sealed_data_key
from consent.store.tables import BankRegistration, PlatformClient, Subject
from consent.store.writes import WriteGate
from consent.vault.envelope import WrappedKey, new_data_key, open_sealed, seal, unwrap_key, wrap_key
from consent.vault.keyring import KeyRing
from consent.vault.source import KeySource

log = logging.getLogger(__name__)


class EventWriter(Protocol):
    """Ingests bank events it can handle on its own (see :mod:`consent.events.batch`)."""

    async def ingest(self, bank_id: str, claims: dict[str, Any]) -> str | None:
        """The outcome once committed, or None: the caller ingests the event itself."""
        ...


@dataclass
class Broker:
    settings: BrokerSettings
    keys: KeySource
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: aiohttp.ClientSession
    clock: Callable[[], datetime]
    policies: dict[str, BankPolicy] = field(default_factory=dict)
    contract: PlatformContract = field(default_factory=PlatformContract)
    _banks: dict[str, BankClient] = field(default_factory=dict)
    # consent id -> {bank account id -> opaque handle}; dropped when the consent ends
    handles: dict[str, dict[str, str]] = field(default_factory=dict)
    # what this process last wrote to the last-known balances (see consent.store.last_known)
    saved_balances: Saved = field(default_factory=Saved)
    # set when a bank event queued receipt work (consent.receipts.worker waits on it)
    receipt_wake: asyncio.Event = field(default_factory=asyncio.Event)
    # short-lived caches of lookups every read repeats (cleared on revocation / deletion)
    clients: TTLCache[PlatformClient] | None = None
    subjects: TTLCache[Subject] | None = None
    data_keys: TTLCache[bytes] | None = None  # consent id -> unwrapped data key
    # consent id -> (its sealed access token and data key as last read, the token opened): used
    # only while the row reads back the same sealed token and key (see open_token)
    opened_tokens: TTLCache[tuple[bytes, bytes, str]] | None = None
    # consent id -> (a row of the balances read's query, exactly as read, and its parsed form):
    # the parsing is skipped while the row reads back the same (consent.service.reads)
    parsed_rows: dict[str, tuple[tuple[Any, ...], Any]] = field(default_factory=dict)
    # group commit of access-log entries (started with the app; see consent.store.audit_writer)
    audit_writer: AuditWriter | None = None
    # on SQLite, the group-commit writer of the common bank events (consent.events.batch)
    event_writer: EventWriter | None = None
    # the balances read's query straight to the driver (see consent.store.fastread)
    reader: Reader | None = None
    # one read per subject at a time in this process (handles are created on first sight)
    _read_locks: SubjectLocks = field(default_factory=SubjectLocks)
    # consent id -> the token refresh in flight in this process: others wait for its token
    # rather than spend the same (rotating, single-use) refresh token again
    refreshing: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    # on SQLite, this process's write transactions one at a time (consent.store.writes)
    writes: WriteGate = field(init=False)
    # reads per subject and requests per platform client (in this process unless given)
    limits: Limits | None = None
    # bank id -> the broker's client id there, as last verified as a bank event's audience
    # (consent.api.events): a bank event needs no database read for it while it matches
    event_audiences: dict[str, str] = field(default_factory=dict)
    # this broker (process) among several on one database: its outbox NOTIFYs carry it, so its
    # own relay, woken already, skips them (consent.outbox.relay)
    instance: str = field(default_factory=lambda: secrets.token_hex(8))

    def __post_init__(self) -> None:
        if not self.policies:
            self.policies = load_policies(Path(self.settings.policy_dir))
        ttl = timedelta(seconds=30)
        self.clients = TTLCache(ttl, self.clock)
        self.subjects = TTLCache(ttl, self.clock)
        self.data_keys = TTLCache(ttl, self.clock)
        self.opened_tokens = TTLCache(ttl, self.clock)
        self.writes = WriteGate(self.engine.dialect.name)
        if self.limits is None:
            self.limits = Limits(
                subjects=TokenBuckets(self.settings.reads_per_minute),
                clients=TokenBuckets(self.settings.client_requests_per_minute),
            )

    def forget_consent(self, consent_id: str) -> None:
        """Drop what is cached about a consent that has ended (its key is being shredded)."""
        self.saved_balances.forget(list(self.handles.get(consent_id, {}).values()))
        self.handles.pop(consent_id, None)
        self.parsed_rows.pop(consent_id, None)
        if self.data_keys is not None:
            self.data_keys.drop(consent_id)
        if self.opened_tokens is not None:
            self.opened_tokens.drop(consent_id)

    async def data_key(self, session: AsyncSession, consent_id: str) -> bytes | None:
        """The consent's unwrapped data key (briefly cached), or None once shredded."""
        assert self.data_keys is not None
        key = self.data_keys.get(consent_id)
        if key is None:
            key = await sealed_data_key(session, self.ring, consent_id)
            if key is not None:
                self.data_keys.put(consent_id, key)
        return key

    def open_data_key(self, consent_id: str, kek_version: int, wrapped: bytes) -> bytes:
        """The data key of a consent whose wrapped key was just read from the database (so it
        has not been shredded); unwrapped once, then briefly cached."""
        assert self.data_keys is not None
        key = self.data_keys.get(consent_id)
        if key is None:
            key = unwrap_key(self.ring, WrappedKey(kek_version, wrapped), consent_id)
            self.data_keys.put(consent_id, key)
        return key

    def open_token(self, consent_id: str, key: bytes, sealed: bytes) -> str:
        """The consent's access token from its sealed value and data key as just read from the
        database (so the consent is authorized and not shredded): opened once, then reused
        briefly while the same sealed value and key read back (a refreshed token, a moved or
        tampered value, another key: opened anew, and a value that does not open raises
        :class:`VaultError` as before)."""
        assert self.opened_tokens is not None
        hit = self.opened_tokens.get(consent_id)
        if hit is not None and hit[0] == sealed and hit[1] == key:
            return hit[2]
        token = open_sealed(key, sealed, consent_id=consent_id, field="access_token").decode()
        self.opened_tokens.put(consent_id, (sealed, key, token))
        return token

    def read_lock(self, subject_id: str) -> asyncio.Lock:
        return self._read_locks.lock(subject_id)

    async def audit(self, entries: list[PendingEntry]) -> None:
        """Append entries to the access log and return once they are committed."""
        if self.audit_writer is None:
            raise AuditNotRecordedError("the audit writer is not running")
        await self.audit_writer.append_all(entries)

    @property
    def ring(self) -> KeyRing:
        """The current key ring (re-read from the key file after a rotation)."""
        return self.keys.ring

    @property
    def handle_secret(self) -> bytes:
        return self.settings.handle_secret.get_secret_value().encode()

    def policy(self, bank_id: str) -> BankPolicy:
        policy = self.policies.get(bank_id)
        if policy is None:
            raise BrokerError(404, "unknown_bank", f"no bank {bank_id[:40]!r} is available")
        return policy

    async def bank(self, bank_id: str) -> BankClient:
        """The client for a bank with a policy, discovering the bank directory on first use."""
        self.policy(bank_id)
        if bank_id not in self._banks:
            try:
                directory = await fetch_directory(self.http, self.settings.bank_directory_url)
            except (aiohttp.ClientError, TimeoutError) as e:
                raise BrokerError(
                    502,
                    "bank_unavailable",
                    "the bank directory is not reachable",
                    headers={"Retry-After": "5"},
                ) from e
            for info in directory.values():
                self._banks.setdefault(info.bank_id, self._client(info))
        client = self._banks.get(bank_id)
        if client is None:
            raise BrokerError(
                404, "unknown_bank", f"the bank {bank_id[:40]!r} is not in the directory"
            )
        return client

    def has_bank(self, bank_id: str) -> bool:
        """Whether :meth:`bank` answers at once (the bank's client exists: no directory read)."""
        return bank_id in self._banks

    def bank_clients(self) -> list[BankClient]:
        """The bank clients discovered so far (read-only: metrics and readiness)."""
        return list(self._banks.values())

    def _client(self, info: BankInfo) -> BankClient:
        return BankClient(
            self.http,
            info,
            timeout_s=self.settings.bank_timeout_s,
            clock=self.clock,
            observe=bank_call_observer(info.bank_id),
        )

    def redirect_uri(self, bank_id: str) -> str:
        return f"{self.settings.base_url()}/callback/{bank_id}"

    def events_url(self, bank_id: str) -> str:
        return f"{self.settings.base_url()}/events/{bank_id}"

    async def credentials(self, bank_id: str) -> Credentials:
        """The broker's client at ``bank_id``; registers (sealing the secret) the first time."""
        client = await self.bank(bank_id)
        aad_id = f"bank:{bank_id}"
        async with self.sessions() as session:
            row = await session.get(BankRegistration, bank_id)
            if row is not None and row.issuer == client.info.issuer:
                key = unwrap_key(self.ring, WrappedKey(row.kek_version, row.wrapped_key), aad_id)
                secret = open_sealed(
                    key, row.client_secret, consent_id=aad_id, field="client_secret"
                ).decode()
                return Credentials(row.client_id, secret)
            try:
                name = "chatbank consent broker"
                cred = await client.register(
                    name, self.redirect_uri(bank_id), self.events_url(bank_id)
                )
            except BankUnavailableError as e:
                raise BrokerError(
                    502, "bank_unavailable", str(e), headers={"Retry-After": str(e.retry_after)}
                ) from e
            key = new_data_key()
            wrapped = wrap_key(self.ring, key, aad_id)
            sealed = seal(
                key, cred.client_secret.encode(), consent_id=aad_id, field="client_secret"
            )
            if row is None:
                row = BankRegistration(
                    bank_id=bank_id,
                    client_id=cred.client_id,
                    client_secret=sealed,
                    kek_version=wrapped.kek_version,
                    wrapped_key=wrapped.blob,
                    issuer=client.info.issuer,
                )
            else:  # the bank was reset (new issuer): register again
                row.client_id, row.client_secret, row.issuer = (
                    cred.client_id,
                    sealed,
                    client.info.issuer,
                )
                row.kek_version, row.wrapped_key = wrapped.kek_version, wrapped.blob
            session.add(row)
            await session.commit()
            log.info("registered at bank %s", bank_id)
            return cred
