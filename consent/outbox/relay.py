"""The relay: claims due outbox rows and POSTs them, signed, to the platform's webhook until a
2xx comes back; exponential backoff with full jitter; nothing is lost across a restart because
the rows stay until delivered. On PostgreSQL rows are claimed with FOR UPDATE SKIP LOCKED so
several broker processes share the work."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from datetime import timedelta

import aiohttp
from sqlmodel import col, select

from consent.outbox.signing import sign_webhook
from consent.service.broker import Broker
from consent.store.tables import OutboxRow, PlatformClient
from consent.vault.envelope import WrappedKey, open_sealed, unwrap_key

log = logging.getLogger(__name__)
BATCH = 20
MAX_BACKOFF_S = 300.0


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """Full-jitter exponential backoff: uniform in [0, min(cap, 0.5 s × 2^attempts)]."""
    return timedelta(seconds=rng.uniform(0, min(MAX_BACKOFF_S, 0.5 * 2**attempts)))


def webhook_secret(broker: Broker, client: PlatformClient) -> bytes:
    aad = f"platform:{client.client_id}"
    key = unwrap_key(broker.ring, WrappedKey(client.kek_version, client.wrapped_key), aad)
    return open_sealed(key, client.webhook_secret, consent_id=aad, field="webhook_secret")


class Relay:
    def __init__(self, broker: Broker, rng: random.Random | None = None) -> None:
        self.broker = broker
        self.rng = rng or random.Random()
        self.wake = asyncio.Event()
        self.delivered = 0

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many were delivered."""
        broker = self.broker
        now = broker.clock()
        delivered = 0
        async with broker.sessions() as session:
            query = (
                select(OutboxRow)
                .where(col(OutboxRow.delivered_at).is_(None), OutboxRow.next_attempt_at <= now)
                .order_by(col(OutboxRow.created_at))
                .limit(BATCH)
            )
            if broker.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = (await session.exec(query)).all()
            for row in rows:
                client = await session.get(PlatformClient, row.client_id)
                if client is None or not client.webhook_url:
                    row.next_attempt_at = now + timedelta(minutes=5)  # nowhere to send it yet
                    session.add(row)
                    continue
                if await self._post(client, row):
                    row.delivered_at = broker.clock()
                    delivered += 1
                else:
                    row.attempts += 1
                    row.next_attempt_at = now + backoff(row.attempts, self.rng)
                session.add(row)
            await session.commit()
        self.delivered += delivered
        return delivered

    async def _post(self, client: PlatformClient, row: OutboxRow) -> bool:
        assert client.webhook_url is not None
        body = json.dumps(
            {
                "id": row.id,
                "kind": row.kind,
                "subject_id": row.subject_id,
                "data": json.loads(row.payload),
            },
            separators=(",", ":"),
        ).encode()
        headers = sign_webhook(
            client.webhook_url,
            body,
            key_id=client.client_id,
            secret=webhook_secret(self.broker, client),
            now=self.broker.clock(),
        )
        try:
            async with self.broker.http.post(
                client.webhook_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=5),
            ) as resp:
                ok = 200 <= resp.status < 300
        except (aiohttp.ClientError, TimeoutError) as e:
            log.info("webhook delivery of %s failed: %s", row.id, type(e).__name__)
            return False
        if not ok:
            log.info("webhook refused %s with %s", row.id, resp.status)
        return ok

    async def run_forever(self, idle_s: float = 1.0) -> None:
        """Deliver, then sleep until woken (new rows) or ``idle_s`` passes (retries)."""
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), idle_s)
            self.wake.clear()
