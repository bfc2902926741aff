"""The relay: claims due outbox rows and POSTs them, signed, to the platform's webhook until a
2xx comes back; exponential backoff with full jitter; nothing is lost across a restart because
the rows stay until delivered.

Pipelined: up to ``max_in_flight`` posts run at once (``max_rows`` rows when they go in batches,
below), each row handed to the platform as soon as a slot is free (a slot frees when its post
returns; the row stays claimed until its outcome is written). A slow post holds its own slot and
nothing else: the others go on, and a newly committed row is claimed the moment the writer wakes
the relay (``wake``, set in this process by whoever wrote the row; on PostgreSQL also by a
``NOTIFY`` from the group commit of bank events in another broker process,
:mod:`consent.events.pgbatch`, ``FOREIGN_WAKE_S`` later, so that process's relay goes first), or
at the next poll (``relay_idle_s``). Outcomes are recorded by
one writer task, several at a time in one transaction (on PostgreSQL the deliveries in one
statement; claims too are one statement there, on the relay's own asyncpg connections).

Order within a subject: only the oldest undelivered row of a subject is ever claimed (the
"head"); its successor becomes claimable once the head is recorded delivered or dead. So one
chat's messages reach the platform in the order they were written, across processes too, and a
failing message holds back the later ones of its subject (never those of other subjects).
Telegram takes about one message a second per chat, so a subject never needs two posts at once.

Claims are exclusive. In one process: a row in flight is never claimed again. Across processes
(PostgreSQL, several brokers): the claim selects with ``FOR UPDATE SKIP LOCKED`` and, in the same
short transaction, moves the row's ``next_attempt_at`` to a lease (``CLAIM_LEASE``) — no
transaction or connection is held while posting. The outcome is written only if the row still
carries that lease; a broker killed mid-post leaves the row to be claimed again when the lease
runs out (the platform de-duplicates by message id: exactly once as the user sees it). SQLite
is one broker process; its claims are the in-process ones and cost no write.

Batched (opt-in per platform client, ``webhook_batch_max`` > 1): the rows claimed together for
one such client are posted in chunks of up to that many (and at most ``BATCH_BYTES`` of body),
one task and one signed request per chunk (a chunk holds its rows' slots until its slowest
message is shown, so rows for batching targets may be up to ``max_rows``, by default
``BATCH_ROWS_FACTOR`` × ``max_in_flight``, in flight while the posts stay within
``max_in_flight``), ``{"events": [<message>, ...]}`` with each message as
the single body would be. Each row still holds its own slot and gets its own outcome from the
answer, ``{"results": {"<id>": {"status": ...} | {"error": "<code>", "retry": true|false}}}``: a
status is delivered, ``retry: false`` is the 410 of a single post (a dead letter), anything else
is a retry. A request that fails as a whole (not 2xx, a timeout, a dropped connection, a body that
is not such an answer) and any id the answer leaves out are retries: a row is never recorded
delivered unless the platform said so for that row. A chunk never holds two rows of one subject
(only a subject's head is ever claimed), so the order within a subject is as above.

Retries are bounded: a 410 from the platform (the user blocked the bot, or the chat refuses the
message for good) or ``outbox_max_attempts`` failed attempts end a message as a dead letter
(:mod:`consent.outbox.deadletter`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy import CursorResult, and_, bindparam, exists, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from consent.metrics import ALERTS_DELIVERED, DEAD_LETTERS, DELIVERY_RETRIES, OUTBOX_CLAIMS
from consent.outbox.deadletter import bury
from consent.outbox.signing import sign_webhook
from consent.outbox.write import NOTIFY_CHANNEL
from consent.service.broker import Broker
from consent.store.pgpool import PgConnections, postgres_dsn
from consent.store.tables import OutboxRow, PlatformClient, UTCDateTime
from consent.vault.envelope import WrappedKey, open_sealed, unwrap_key

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 32  # posts at once per broker process
MAX_BACKOFF_S = 300.0
POST_TIMEOUT_S = 5.0
# another broker process's NOTIFY wakes this relay this much later (its own relay goes first)
FOREIGN_WAKE_S = 0.1
CLAIM_LEASE = timedelta(seconds=15)  # > POST_TIMEOUT_S plus the outcome's write
NOWHERE_TO_SEND = timedelta(minutes=5)  # the client has no webhook (yet)
TARGET_TTL_S = 30.0  # a platform client's webhook address and secret, held this long
BATCH_MAX = 100  # the most messages a platform client may ask for in one POST
BATCH_ROWS_FACTOR = 4  # rows in flight in batches: this many times max_in_flight
BATCH_BYTES = 512 * 1024  # a batched body is cut before it grows past this (bot: 1 MiB at most)

DELIVERED, RETRY = "delivered", "retry"
_REASON = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


async def _reason(resp: aiohttp.ClientResponse) -> str:
    """The platform's error code from a 410 body, if it is a plain code; else "gone"."""
    try:
        code = (await resp.json(content_type=None)).get("error")
    except (ValueError, AttributeError, aiohttp.ClientError):
        code = None
    return f"platform:{code}" if isinstance(code, str) and _REASON.match(code) else "gone"


def _message(row: OutboxRow) -> bytes:
    """The row as the platform receives it: the single-message body, and each element of a
    batch's ``events``."""
    return json.dumps(
        {
            "id": row.id,
            "kind": row.kind,
            "subject_id": row.subject_id,
            "data": json.loads(row.payload),
        },
        separators=(",", ":"),
    ).encode()


def batch_outcome(result: object) -> str:
    """One id's entry of a batch's ``results`` as :meth:`Relay._post` would have recorded its
    single post: a ``status`` (2xx) is DELIVERED; ``"retry": false`` (410) the platform's reason
    for refusing it for good; anything else (a retry, a missing or malformed entry) RETRY."""
    if not isinstance(result, dict):
        return RETRY
    status, error = result.get("status"), result.get("error")
    if isinstance(status, str) and error is None:
        return DELIVERED
    if error is not None and result.get("retry") is False:
        return f"platform:{error}" if isinstance(error, str) and _REASON.match(error) else "gone"
    return RETRY


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """Full-jitter exponential backoff: uniform in [0, min(cap, 0.5 s × 2^attempts)]."""
    return timedelta(seconds=rng.uniform(0, min(MAX_BACKOFF_S, 0.5 * 2**attempts)))


def webhook_secret(broker: Broker, client: PlatformClient) -> bytes:
    aad = f"platform:{client.client_id}"
    key = unwrap_key(broker.ring, WrappedKey(client.kek_version, client.wrapped_key), aad)
    return open_sealed(key, client.webhook_secret, consent_id=aad, field="webhook_secret")


@dataclass(frozen=True)
class Target:
    """Where and how a platform client's messages are posted."""

    client_id: str
    url: str
    secret: bytes
    batch_max: int = 1  # messages per POST; 1: the single-message body


@dataclass
class _Claimed:
    row: OutboxRow
    lease: datetime | None  # the lease written at the claim (PostgreSQL), else None
    target: Target | None
    # once this row is recorded, something may be claimable that was not: the subject has a
    # later row waiting, or the claim was cut short by the free slots
    more: bool = True


@functools.cache
def _claim_query(for_update: bool) -> Select[OutboxRow, bool]:
    """Due rows, each the oldest undelivered one of its subject, oldest first, leaving out the
    ones in flight here, and whether the subject has more rows waiting (built once: the
    parameters are ``now``, ``limit`` and ``flight``)."""
    earlier, later = aliased(OutboxRow), aliased(OutboxRow)
    waiting = (
        exists()
        .where(
            col(later.subject_id) == col(OutboxRow.subject_id),
            col(later.delivered_at).is_(None),
            col(later.id) != col(OutboxRow.id),
        )
        .label("waiting")
    )
    query = (
        select(OutboxRow, waiting)
        .where(
            col(OutboxRow.delivered_at).is_(None),
            col(OutboxRow.next_attempt_at) <= bindparam("now", type_=UTCDateTime()),
            col(OutboxRow.id).not_in(bindparam("flight", expanding=True)),
            ~exists().where(
                col(earlier.subject_id) == col(OutboxRow.subject_id),
                col(earlier.delivered_at).is_(None),
                or_(
                    col(earlier.created_at) < col(OutboxRow.created_at),
                    and_(
                        col(earlier.created_at) == col(OutboxRow.created_at),
                        col(earlier.id) < col(OutboxRow.id),
                    ),
                ),
            ),
        )
        .order_by(col(OutboxRow.created_at), col(OutboxRow.id))
        .limit(bindparam("limit"))
    )
    return query.with_for_update(skip_locked=True) if for_update else query


# PostgreSQL: the claim in one statement on the relay's own asyncpg connection (no pooled
# checkout with its ping, no ORM): due heads in (created_at, id) order along the partial index
# ix_outbox_pending_order (migration 0012), so the walk stops after ``limit`` claimable rows
# however long the backlog (ordering by the due index instead sorted every due row: the claim
# grew with the backlog), locked SKIP LOCKED and moved to the lease in the same statement
_PG_CLAIM_SQL = """
WITH due AS (
    SELECT o.id, EXISTS (
        SELECT FROM outbox AS l
        WHERE l.subject_id = o.subject_id AND l.delivered_at IS NULL AND l.id <> o.id
    ) AS waiting
    FROM outbox AS o
    WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $1 AND o.id <> ALL($3::text[])
      AND NOT EXISTS (
        SELECT FROM outbox AS e
        WHERE e.subject_id = o.subject_id AND e.delivered_at IS NULL
          AND e.created_at <= o.created_at
          AND (e.created_at < o.created_at OR e.id < o.id)
      )
    ORDER BY o.created_at, o.id
    LIMIT $2
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox SET next_attempt_at = $4 FROM due WHERE outbox.id = due.id
RETURNING outbox.id, outbox.client_id, outbox.subject_id, outbox.kind, outbox.payload,
          outbox.attempts, outbox.next_attempt_at, outbox.delivered_at, outbox.created_at,
          due.waiting
"""
# the deliveries of a batch of outcomes in one statement, each only if it still carries its lease
_PG_DELIVERED_SQL = """
UPDATE outbox SET delivered_at = $1
FROM unnest($2::text[], $3::timestamptz[]) AS u (id, lease)
WHERE outbox.id = u.id AND outbox.delivered_at IS NULL AND outbox.next_attempt_at = u.lease
RETURNING outbox.id
"""
_PG_FIELDS = (
    "id",
    "client_id",
    "subject_id",
    "kind",
    "payload",
    "attempts",
    "next_attempt_at",
    "delivered_at",
    "created_at",
)


class Relay:
    def __init__(
        self,
        broker: Broker,
        rng: random.Random | None = None,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_rows: int | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.broker = broker
        self.rng = rng or random.Random()
        self.max_in_flight = max_in_flight
        # rows in flight at once when they go in batches: a batch holds its rows' slots until
        # its slowest message is shown, so batches get more rows than single posts do
        self.max_rows = max_rows if max_rows is not None else BATCH_ROWS_FACTOR * max_in_flight
        self._posts = 0  # requests in progress (a single message, or a batch)
        self.wake = asyncio.Event()  # set when a row was written or a slot came free
        self.delivered = 0
        self._flight: set[str] = set()  # row ids claimed by this process and not yet recorded
        self._posting = 0  # of which being posted (the rest wait for their outcome's write)
        self._targets: dict[str, tuple[Target, float]] = {}
        self._outcomes: asyncio.Queue[tuple[_Claimed, str | None]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._leases = broker.engine.dialect.name == "postgresql"
        # PostgreSQL: claims and deliveries on connections of the relay's own, open while it
        # runs (run_forever, run_once)
        self._dsn = postgres_dsn(broker.settings.database_url) if self._leases else None
        self._pg: PgConnections | None = None
        self._pg_users = 0
        self._foreign: asyncio.TimerHandle | None = None  # a wake for another process's rows

    @property
    def in_flight(self) -> int:
        """Rows being posted in this process: at most ``max_in_flight`` single posts, or
        ``max_rows`` rows in batches."""
        return self._posting

    def _free(self) -> int:
        """How many rows to claim now: as many as free posts can carry (one a post, or up to
        the widest batch of a target known here), within ``max_rows`` rows in flight. With no
        batching target known this is ``max_in_flight`` minus the posts in progress, as it
        always was."""
        cached = self._targets.values()
        widest = max((t.batch_max for t, _ in cached), default=1)
        if widest <= 1:
            return self.max_in_flight - self._posting
        posts = (self.max_in_flight - self._posts) * widest
        return max(0, min(self.max_rows - self._posting, posts))

    # --- claiming ------------------------------------------------------------------------
    async def _claim(self, now: datetime, limit: int) -> list[_Claimed]:
        """Claim up to ``limit`` due rows, each the oldest undelivered one of its subject."""
        if limit <= 0:
            return []
        claimed = await self._claim_rows(now, limit)
        OUTBOX_CLAIMS.labels("rows" if claimed else "none").inc()
        return claimed

    async def _claim_rows(self, now: datetime, limit: int) -> list[_Claimed]:
        if self._pg is not None:
            return await self._claim_pg(self._pg, now, limit)
        broker = self.broker
        query = _claim_query(self._leases)
        params = {"now": now, "limit": limit, "flight": sorted(self._flight)}
        async with broker.sessions() as session:
            found = list((await session.exec(query, params=params)).all())
            lease = None
            if self._leases and found:
                lease = broker.clock() + CLAIM_LEASE
                for row, _ in found:
                    row.next_attempt_at = lease
                    session.add(row)
                await session.commit()
            full = len(found) >= limit
            claimed = [
                _Claimed(row, lease, None, more=full or bool(waiting))
                for row, waiting in found
                if row.id not in self._flight
            ]
            self._flight.update(c.row.id for c in claimed)
            self._posting += len(claimed)
            try:
                for c in claimed:
                    c.target = await self._target(session, c.row.client_id)
            except BaseException:
                self._flight.difference_update(c.row.id for c in claimed)
                self._posting -= len(claimed)
                raise
        return claimed

    async def _claim_pg(self, pg: PgConnections, now: datetime, limit: int) -> list[_Claimed]:
        """:meth:`_claim` on PostgreSQL: one statement (``_PG_CLAIM_SQL``), committed on its
        own before anything is posted."""
        lease = self.broker.clock() + CLAIM_LEASE
        async with pg.using() as conn:
            found = await conn.fetch(_PG_CLAIM_SQL, now, limit, sorted(self._flight), lease)
        found = sorted(found, key=lambda r: (r["created_at"], r["id"]))
        full = len(found) >= limit
        claimed = [
            _Claimed(OutboxRow(**{k: r[k] for k in _PG_FIELDS}), lease, None, full or r["waiting"])
            for r in found
            if r["id"] not in self._flight
        ]
        self._flight.update(c.row.id for c in claimed)
        self._posting += len(claimed)
        try:
            for c in claimed:
                c.target = self._cached_target(c.row.client_id)
                if c.target is None:
                    async with self.broker.sessions() as session:
                        c.target = await self._target(session, c.row.client_id)
        except BaseException:
            self._flight.difference_update(c.row.id for c in claimed)
            self._posting -= len(claimed)
            raise
        return claimed

    def _cached_target(self, client_id: str) -> Target | None:
        cached = self._targets.get(client_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return None

    async def _target(self, session: AsyncSession, client_id: str) -> Target | None:
        cached = self._targets.get(client_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        client = await session.get(PlatformClient, client_id)
        if client is None or not client.webhook_url:
            return None
        target = Target(
            client_id,
            client.webhook_url,
            webhook_secret(self.broker, client),
            max(1, min(BATCH_MAX, client.webhook_batch_max or 1)),
        )
        self._targets[client_id] = (target, time.monotonic() + TARGET_TTL_S)
        return target

    # --- posting -------------------------------------------------------------------------
    async def _attempt(self, claimed: _Claimed) -> str | None:
        """The outcome of posting the row: None when there is nowhere to post it."""
        if claimed.target is None:
            return None
        return await self._post(claimed.target, claimed.row)

    async def _post(self, target: Target, row: OutboxRow) -> str:
        """DELIVERED, RETRY, or the platform's reason for refusing the message for good."""
        try:
            async with self._signed_post(target, _message(row)) as resp:
                if 200 <= resp.status < 300:
                    return DELIVERED
                log.info("webhook refused %s with %s", row.id, resp.status)
                if resp.status != 410:
                    return RETRY
                return await _reason(resp)
        except (aiohttp.ClientError, TimeoutError) as e:
            log.info("webhook delivery of %s failed: %s", row.id, type(e).__name__)
            return RETRY

    @contextlib.asynccontextmanager
    async def _signed_post(
        self, target: Target, body: bytes
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST ``body`` to ``target``'s webhook, signed with its secret (RFC 9421), within
        ``POST_TIMEOUT_S``; the response while it is open."""
        headers = sign_webhook(
            target.url,
            body,
            key_id=target.client_id,
            secret=target.secret,
            now=self.broker.clock(),
        )
        async with self.broker.http.post(
            target.url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S),
        ) as resp:
            yield resp

    def _chunks(self, claimed: Sequence[_Claimed]) -> list[list[_Claimed]]:
        """``claimed`` in the groups posted together: a row alone unless its target batches,
        then up to the target's ``batch_max`` rows (and ``BATCH_BYTES``) of that target."""
        chunks: list[list[_Claimed]] = []
        open_: dict[str, list[_Claimed]] = {}
        for c in claimed:
            target = c.target
            if target is None or target.batch_max <= 1:
                chunks.append([c])
                continue
            chunk = open_.get(target.client_id)
            if chunk is None or len(chunk) >= target.batch_max:
                chunk = open_[target.client_id] = []
                chunks.append(chunk)
            chunk.append(c)
        return chunks

    async def _attempt_chunk(self, chunk: Sequence[_Claimed]) -> list[str | None]:
        """The outcome of each row of ``chunk`` (one of :meth:`_chunks`), in its order."""
        target = chunk[0].target
        if target is None or target.batch_max <= 1:
            return [await self._attempt(c) for c in chunk]
        outcomes: dict[str, str] = {}
        bodies = [(c.row, _message(c.row)) for c in chunk]
        part: list[tuple[OutboxRow, bytes]] = []
        size = 0
        for row, body in bodies:
            if part and size + len(body) + 1 > BATCH_BYTES:
                outcomes.update(await self._post_batch(target, part))
                part, size = [], 0
            part.append((row, body))
            size += len(body) + 1
        if part:
            outcomes.update(await self._post_batch(target, part))
        return [outcomes.get(c.row.id, RETRY) for c in chunk]

    async def _post_batch(
        self, target: Target, part: Sequence[tuple[OutboxRow, bytes]]
    ) -> dict[str, str]:
        """Post the messages ``part`` (row, its single-message body) in one signed request;
        each row's outcome as :meth:`_post` gives it, RETRY for all if the request failed."""
        body = b'{"events":[' + b",".join(m for _, m in part) + b"]}"
        ids = [row.id for row, _ in part]
        try:
            async with self._signed_post(target, body) as resp:
                if not 200 <= resp.status < 300:
                    log.info("webhook refused a batch of %d with %s", len(ids), resp.status)
                    return dict.fromkeys(ids, RETRY)
                try:
                    answer = await resp.json(content_type=None)
                except ValueError:
                    answer = None
        except (aiohttp.ClientError, TimeoutError) as e:
            log.info("webhook delivery of a batch of %d failed: %s", len(ids), type(e).__name__)
            return dict.fromkeys(ids, RETRY)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, dict):
            log.info("webhook answered a batch of %d without results", len(ids))
            return dict.fromkeys(ids, RETRY)
        return {i: batch_outcome(results.get(i)) for i in ids}

    # --- recording -----------------------------------------------------------------------
    async def _record(self, done: Sequence[tuple[_Claimed, str | None]]) -> int:
        """Write the outcomes of ``done`` in one transaction; returns how many were delivered.
        A row whose lease was taken over (another process claimed it after the lease ran out)
        is left to that process."""
        broker = self.broker
        delivered = 0
        if self._pg is not None:
            leased = [(c, o) for c, o in done if o == DELIVERED and c.lease is not None]
            if leased:
                delivered += await self._delivered_pg(self._pg, leased)
                done = [(c, o) for c, o in done if not (o == DELIVERED and c.lease is not None)]
                if not done:
                    self.delivered += delivered
                    return delivered
        async with broker.sessions() as session:
            for claimed, outcome in done:
                row = claimed.row
                mine = [
                    col(OutboxRow.id) == row.id,
                    col(OutboxRow.delivered_at).is_(None),
                ]
                if claimed.lease is not None:
                    mine.append(col(OutboxRow.next_attempt_at) == claimed.lease)
                now = broker.clock()
                values: dict[str, object]
                if outcome is None:
                    values = {"next_attempt_at": now + NOWHERE_TO_SEND}
                elif outcome == DELIVERED:
                    values = {"delivered_at": now}
                elif outcome == RETRY and row.attempts + 1 < broker.settings.outbox_max_attempts:
                    values = {
                        "attempts": row.attempts + 1,
                        "next_attempt_at": now + backoff(row.attempts + 1, self.rng),
                    }
                else:
                    fresh = (await session.exec(select(OutboxRow).where(*mine))).first()
                    if fresh is not None:
                        fresh.attempts += 1
                        DEAD_LETTERS.inc()
                        reason = outcome if outcome != RETRY else "too_many_attempts"
                        await bury(session, fresh, reason, now)
                    continue
                result = await session.exec(update(OutboxRow).where(*mine).values(**values))
                changed = result.rowcount if isinstance(result, CursorResult) else 0
                if outcome == DELIVERED and changed:
                    delivered += 1
                    ALERTS_DELIVERED.inc()
                elif outcome == RETRY and changed:
                    DELIVERY_RETRIES.inc()
            await session.commit()
        self.delivered += delivered
        return delivered

    async def _delivered_pg(
        self, pg: PgConnections, leased: Sequence[tuple[_Claimed, str | None]]
    ) -> int:
        """Record the deliveries ``leased`` in one statement (``_PG_DELIVERED_SQL``); how many
        still carried their lease."""
        async with pg.using() as conn:
            changed = await conn.fetch(
                _PG_DELIVERED_SQL,
                self.broker.clock(),
                [c.row.id for c, _ in leased],
                [c.lease for c, _ in leased],
            )
        ALERTS_DELIVERED.inc(len(changed))
        return len(changed)

    async def _release(self, done: Sequence[tuple[_Claimed, str | None]]) -> int:
        """Record ``done`` and free their slots (even if recording failed: the rows stay
        undelivered and are claimed again)."""
        try:
            return await self._record(done)
        finally:
            self._flight.difference_update(claimed.row.id for claimed, _ in done)
            if any(claimed.more for claimed, _ in done):
                self.wake.set()  # a subject's next row, or one left out for want of a slot

    # --- driving -------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _connections(self) -> AsyncIterator[None]:
        """The relay's own PostgreSQL connections open meanwhile (nothing on SQLite)."""
        if self._dsn is None:
            yield
            return
        if self._pg is None:
            self._pg = PgConnections(self._dsn, 2)
        self._pg_users += 1
        try:
            yield
        finally:
            self._pg_users -= 1
            if self._pg_users == 0 and self._pg is not None:
                pg, self._pg = self._pg, None
                await pg.close()

    async def run_once(self) -> int:
        """Deliver what is due now (in slots this process's own loop leaves free) and return
        how many were delivered: claim, post side by side, record, and again until nothing
        due is left to claim (a subject's next row is claimable once its head is recorded)."""
        async with self._connections():
            return await self._run_once()

    async def _run_once(self) -> int:
        now = self.broker.clock()
        delivered = 0
        while claimed := await self._claim(now, self._free()):
            chunks = self._chunks(claimed)
            self._posts += len(chunks)
            try:
                outcomes = await asyncio.gather(*(self._attempt_chunk(c) for c in chunks))
            finally:
                self._posts -= len(chunks)
                self._posted(claimed)
            done = [
                (c, o)
                for chunk, chunk_outcomes in zip(chunks, outcomes, strict=True)
                for c, o in zip(chunk, chunk_outcomes, strict=True)
            ]
            delivered += await self._release(done)
        return delivered

    def _posted(self, claimed: Sequence[_Claimed]) -> None:
        """Free the posting slots of ``claimed``; the rows stay claimed until recorded."""
        self._posting -= len(claimed)
        if any(c.more for c in claimed):
            self.wake.set()

    async def _deliver(self, chunk: list[_Claimed]) -> None:
        """Post ``chunk`` (one row, or a batch for one target) and queue each row's outcome."""
        outcomes: Sequence[str | None]
        try:
            outcomes = await self._attempt_chunk(chunk)
        except Exception:
            log.exception("posting outbox message(s) %s failed", [c.row.id for c in chunk])
            outcomes = [RETRY] * len(chunk)
        finally:
            self._posts -= 1
            self._posted(chunk)
        for claimed, outcome in zip(chunk, outcomes, strict=True):
            self._outcomes.put_nowait((claimed, outcome))

    async def _write_outcomes(self) -> None:
        """Record finished posts, as many as are waiting in one transaction."""
        while True:
            done = [await self._outcomes.get()]
            while not self._outcomes.empty():
                done.append(self._outcomes.get_nowait())
            try:
                await self._release(done)
            except Exception:
                log.exception(
                    "recording %d outbox outcomes failed; they will be retried", len(done)
                )

    async def run_forever(self, idle_s: float = 1.0) -> None:
        """Claim into free slots whenever woken (a row was written, a post finished) or every
        ``idle_s`` (retries coming due, rows written by another process)."""
        async with self._connections():
            await self._run_forever(idle_s)

    async def _run_forever(self, idle_s: float) -> None:
        writer = asyncio.create_task(self._write_outcomes())
        listener = await self._listen()
        try:
            while True:
                self.wake.clear()
                try:
                    claimed = await self._claim(self.broker.clock(), self._free())
                    for chunk in self._chunks(claimed):
                        self._posts += 1
                        task = asyncio.create_task(self._deliver(chunk))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                except Exception:
                    log.exception("outbox relay claim failed; retrying")
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
                # that arrives as the wake-up fires, and the relay would never stop
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(idle_s):
                        await self.wake.wait()
        finally:
            if self._foreign is not None:
                self._foreign.cancel()
                self._foreign = None
            writer.cancel()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(writer, *self._tasks, return_exceptions=True)
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close(timeout=5)

    def _notified(self, _conn: Any, _pid: int, _channel: str, sender: str) -> None:
        """A ``NOTIFY``: rows were committed to the outbox. This process's own commits woke
        this relay already; another's wake it ``FOREIGN_WAKE_S`` later, once for all that
        arrive meanwhile, so that the committing process's relay (woken at once) takes its
        rows, and this one takes what that one could not (no free slot, killed). Every relay
        claiming on every commit made two of three claims come back empty with two brokers."""
        if sender == self.broker.instance:
            return
        if self._foreign is None or self._foreign.cancelled():
            self._foreign = asyncio.get_running_loop().call_later(
                FOREIGN_WAKE_S, self._foreign_wake
            )

    def _foreign_wake(self) -> None:
        self._foreign = None
        self.wake.set()

    async def _listen(self) -> Any:
        """PostgreSQL: a connection listening for rows committed to the outbox by any broker
        process (``NOTIFY``, :mod:`consent.events.pgbatch`), each waking this relay at once
        rather than at its next poll; None on SQLite, or if it cannot be opened (then polls)."""
        if self._dsn is None:
            return None
        try:
            conn = await asyncpg.connect(self._dsn)
            await conn.add_listener(NOTIFY_CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError):
            log.warning("outbox relay: cannot listen for new rows; polling", exc_info=True)
            return None
        return conn
