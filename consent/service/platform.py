"""Platform clients (the bot) and the subjects each of them created."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from consent.domain.ids import is_id
from consent.service.broker import Broker
from consent.store.fastread import utc
from consent.store.tables import PlatformClient, Subject
from consent.vault.envelope import new_data_key, seal, wrap_key


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def register_client(
    broker: Broker, name: str, webhook_url: str | None, *, webhook_batch_max: int = 1
) -> tuple[PlatformClient, str, str]:
    """A new platform client; returns it with its credential and webhook secret (shown once)."""
    client_id = f"pc_{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    webhook_secret = secrets.token_urlsafe(32)
    key = new_data_key()
    wrapped = wrap_key(broker.ring, key, f"platform:{client_id}")
    row = PlatformClient(
        client_id=client_id,
        name=name,
        secret_hash=_hash(secret),
        webhook_url=webhook_url,
        webhook_batch_max=webhook_batch_max,
        webhook_secret=seal(
            key, webhook_secret.encode(), consent_id=f"platform:{client_id}", field="webhook_secret"
        ),
        kek_version=wrapped.kek_version,
        wrapped_key=wrapped.blob,
        created_at=broker.clock(),
    )
    async with broker.sessions() as session:
        session.add(row)
        await session.commit()
    return row, f"{client_id}.{secret}", webhook_secret


async def authenticate(broker: Broker, credential: str) -> PlatformClient | None:
    """The client whose ``<client_id>.<secret>`` this is, or None (compared in constant time).
    A verified credential is remembered (by its hash) for a few seconds."""
    assert broker.clients is not None
    fingerprint = _hash(credential)
    cached = broker.clients.get(fingerprint)
    if cached is not None:
        return cached
    client_id, _, secret = credential.partition(".")
    async with broker.sessions() as session:
        row = await session.get(PlatformClient, client_id) if is_id(client_id) else None
    expected = row.secret_hash if row else _hash("\x00")
    if not hmac.compare_digest(expected, _hash(secret)) or row is None:
        return None
    broker.clients.put(fingerprint, row)
    return row


async def create_subject(broker: Broker, client: PlatformClient) -> Subject:
    subject = Subject(
        subject_id=f"sub_{secrets.token_urlsafe(12)}",
        client_id=client.client_id,
        created_at=broker.clock(),
    )
    async with broker.sessions() as session:
        session.add(subject)
        await session.commit()
    return subject


async def find_subject(broker: Broker, subject_id: str) -> Subject | None:
    """The subject, whichever client owns it (briefly cached), or None."""
    assert broker.subjects is not None
    subject = broker.subjects.get(subject_id)
    if subject is None:
        if broker.reader is not None:  # straight to the driver (consent.store.fastread)
            row = await broker.reader.subject(subject_id)
            subject = (
                Subject(
                    subject_id=row["subject_id"],
                    client_id=row["client_id"],
                    created_at=_utc(row["created_at"]),
                )
                if row is not None
                else None
            )
        else:
            async with broker.sessions() as session:
                subject = await session.get(Subject, subject_id)
        if subject is not None:
            broker.subjects.put(subject_id, subject)
    return subject


def _utc(value: object) -> datetime:
    parsed = utc(value)
    assert parsed is not None  # created_at is NOT NULL
    return parsed
