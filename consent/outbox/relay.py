"""The relay: claims due outbox rows and POSTs them, signed, to the platform's webhook until a
2xx comes back; exponential backoff with full jitter; nothing is lost across a restart because
the rows stay until delivered. On PostgreSQL rows are claimed with FOR UPDATE SKIP LOCKED so
several broker processes share the work.

Retries are bounded: a 410 from the platform (the user blocked the bot, or the chat refuses the
message for good) or ``outbox_max_attempts`` failed attempts end a message as a dead letter
(:mod:`consent.outbox.deadletter`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
from collections.abc import Sequence
from datetime import timedelta

import aiohttp
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.metrics import ALERTS_DELIVERED, DEAD_LETTERS, DELIVERY_RETRIES
from consent.outbox.deadletter import bury
from consent.outbox.signing import sign_webhook
from consent.service.broker import Broker
from consent.store.tables import OutboxRow, PlatformClient
from consent.vault.envelope import WrappedKey, open_sealed, unwrap_key

log = logging.getLogger(__name__)
BATCH = 20
MAX_BACKOFF_S = 300.0


DELIVERED, RETRY, HELD_BACK = "delivered", "retry", "held_back"
_REASON = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


async def _reason(resp: aiohttp.ClientResponse) -> str:
    """The platform's error code from a 410 body, if it is a plain code; else "gone"."""
    try:
        code = (await resp.json(content_type=None)).get("error")
    except (ValueError, AttributeError, aiohttp.ClientError):
        code = None
    return f"platform:{code}" if isinstance(code, str) and _REASON.match(code) else "gone"


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
        """Deliver what is due now; returns how many were delivered.

        The batch is posted concurrently across subjects and in order within a subject (one
        chat's messages arrive as they were written). Nothing is written while posting. The
        relay's one write per pass does not queue on the SQLite write gate behind the ingests
        (:class:`consent.store.writes.WriteGate`): it waits for at most the one ingest that
        holds SQLite's lock, so deliveries keep pace when events pour in.
        """
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
            clients = {
                client_id: await session.get(PlatformClient, client_id)
                for client_id in {row.client_id for row in rows}
            }
            outcomes = await self._post_all(rows, clients)
            for row in rows:
                outcome = outcomes.get(row.id)
                if outcome is None:
                    row.next_attempt_at = now + timedelta(minutes=5)  # nowhere to send it yet
                    session.add(row)
                elif outcome == DELIVERED:
                    row.delivered_at = broker.clock()
                    delivered += 1
                    ALERTS_DELIVERED.inc()
                    session.add(row)
                else:
                    await self._failed(session, row, outcome)
            await session.commit()
        self.delivered += delivered
        return delivered

    async def _post_all(
        self, rows: Sequence[OutboxRow], clients: dict[str, PlatformClient | None]
    ) -> dict[str, str]:
        """Post ``rows``: subjects side by side, each subject's rows one after the other (a
        failure holds back that subject's later rows). Rows with nowhere to go are left out."""
        by_subject: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_subject.setdefault(row.subject_id, []).append(row)
        outcomes: dict[str, str] = {}

        async def one_subject(queue: list[OutboxRow]) -> None:
            for row in queue:
                client = clients.get(row.client_id)
                if client is None or not client.webhook_url:
                    continue
                outcomes[row.id] = await self._post(client, row)
                if outcomes[row.id] != DELIVERED:
                    for later in queue[queue.index(row) + 1 :]:
                        outcomes[later.id] = HELD_BACK
                    return

        await asyncio.gather(*(one_subject(queue) for queue in by_subject.values()))
        return outcomes

    async def _failed(self, session: AsyncSession, row: OutboxRow, outcome: str) -> None:
        """Count a failed attempt: back off, or give up (a dead letter)."""
        broker = self.broker
        if outcome == HELD_BACK:  # not tried: an earlier message of its subject failed
            row.next_attempt_at = broker.clock() + backoff(row.attempts, self.rng)
            session.add(row)
            return
        row.attempts += 1
        if outcome != RETRY:
            DEAD_LETTERS.inc()
            await bury(session, row, outcome, broker.clock())
        elif row.attempts >= broker.settings.outbox_max_attempts:
            DEAD_LETTERS.inc()
            await bury(session, row, "too_many_attempts", broker.clock())
        else:
            DELIVERY_RETRIES.inc()
            row.next_attempt_at = broker.clock() + backoff(row.attempts, self.rng)
            session.add(row)

    async def _post(self, client: PlatformClient, row: OutboxRow) -> str:
        """DELIVERED, RETRY, or the platform's reason for refusing the message for good."""
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
                if 200 <= resp.status < 300:
                    return DELIVERED
                log.info("webhook refused %s with %s", row.id, resp.status)
                if resp.status != 410:
                    return RETRY
                return await _reason(resp)
        except (aiohttp.ClientError, TimeoutError) as e:
            log.info("webhook delivery of %s failed: %s", row.id, type(e).__name__)
            return RETRY

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
