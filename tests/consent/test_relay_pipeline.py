"""The pipelined relay: at most ``max_in_flight`` posts at once; a slow post holds its own slot
and nothing else (other subjects, and rows written meanwhile, are delivered past it); one
subject's messages are posted one at a time, in the order they were written, across retries;
and on PostgreSQL a claimed row is leased, so another relay does not post it while the first
one is still posting, and takes it over only once the lease has run out.

No test waits for a time to pass: each one waits for events (a post arrived, a row recorded),
bounded only by a generous timeout that fails the test if the relay stalls."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY
from sqlmodel import select

from consent.api.keys import BROKER
from consent.app import create_app as create_broker
from consent.outbox.relay import CLAIM_LEASE, Relay, _Claimed
from consent.outbox.write import NOTIFY_CHANNEL, enqueue
from consent.service.broker import Broker
from consent.store.pgpool import postgres_dsn
from consent.store.tables import OutboxRow
from tests.consent.broker_env import ADMIN, Env, start, stop

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
WAIT_S = 20.0  # a stalled relay fails the test; a working one is far quicker


@dataclass
class Hook:
    """The platform's webhook: records each post and its subject, counts the posts in progress,
    and holds a post while its subject (or every subject) is held."""

    received: list[tuple[str, str]] = field(default_factory=list)  # (subject, message id)
    now: Counter[str] = field(default_factory=Counter)  # posts in progress per subject
    busy: int = 0
    most_busy: int = 0
    most_per_subject: int = 0
    held: dict[str, asyncio.Event] = field(default_factory=dict)  # subject → release
    hold_all: asyncio.Event | None = None
    hold_first: asyncio.Event | None = None  # holds the very first post only
    fail_first: set[str] = field(default_factory=set)  # message ids refused once with a 503
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        subject, message = body["subject_id"], body["id"]
        self.busy += 1
        self.now[subject] += 1
        self.most_busy = max(self.most_busy, self.busy)
        self.most_per_subject = max(self.most_per_subject, self.now[subject])
        async with self.arrived:
            self.received.append((subject, message))
            self.arrived.notify_all()
        first = len(self.received) == 1
        try:
            if first and self.hold_first is not None:
                await self.hold_first.wait()
            if subject in self.held:
                await self.held[subject].wait()
            if self.hold_all is not None:
                await self.hold_all.wait()
            if message in self.fail_first:
                self.fail_first.discard(message)
                return web.json_response({"error": "chat_unavailable"}, status=503)
            return web.Response(status=204)
        finally:
            self.busy -= 1
            self.now[subject] -= 1

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S), self.arrived:
            await self.arrived.wait_for(check)

    def ids(self, subject: str | None = None) -> list[str]:
        return [m for s, m in self.received if subject is None or s == subject]


@pytest.fixture
async def wired(
    tmp_path: Path, database_url: str, aiohttp_server: ServerFactory
) -> AsyncIterator[tuple[Env, Hook, str]]:
    """A broker whose own relay idles (it is never woken: the rows are written straight into
    the outbox), the webhook, and the platform client's id."""
    env = await start(tmp_path, database_url, relay_idle_s=60)
    hook = Hook()
    app = web.Application()
    app.router.add_post("/webhook", hook.handle)
    server = await aiohttp_server(app)
    resp = await env.broker.post(
        "/admin/v1/platform-clients",
        json={"name": "bot", "webhook_url": str(server.make_url("/webhook"))},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    client_id = (await resp.json())["client_id"]
    yield env, hook, client_id
    await stop(env)


async def _write(env: Env, client_id: str, rows: list[tuple[str, int]]) -> list[str]:
    """Outbox rows for (subject, n), written in this order, one microsecond apart."""
    broker: Broker = env.broker.app[BROKER]
    async with broker.sessions() as session:
        ids = []
        for i, (subject, n) in enumerate(rows):
            at = env.clock.now + timedelta(microseconds=i)
            ids.append(
                enqueue(
                    session,
                    client_id=client_id,
                    subject_id=subject,
                    kind="consent_expiring",
                    data={"n": n},
                    now=at,
                )
            )
        await session.commit()
    env.clock.now += timedelta(seconds=1)  # every row is due
    return ids


async def _delivered(broker: Broker) -> set[str]:
    async with broker.sessions() as session:
        rows = (await session.exec(select(OutboxRow))).all()
    return {r.id for r in rows if r.delivered_at is not None}


async def _until_delivered(broker: Broker, ids: list[str]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not set(ids) <= await _delivered(broker):  # noqa: ASYNC110 - polls the database
            await asyncio.sleep(0.02)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Relay], None]]:
    """Run relays' loops for the test, stopping them after it."""
    tasks: list[asyncio.Task[None]] = []

    def run(relay: Relay) -> None:
        tasks.append(asyncio.create_task(relay.run_forever(idle_s=60)))

    yield run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class CountingRelay(Relay):
    """A relay that says when it has finished a claim pass."""

    def __init__(self, broker: Broker, *, max_in_flight: int) -> None:
        super().__init__(broker, max_in_flight=max_in_flight)
        self.passes = 0
        self.passed = asyncio.Condition()

    async def _claim(self, now: datetime, limit: int) -> list[_Claimed]:
        try:
            return await super()._claim(now, limit)
        finally:
            async with self.passed:
                self.passes += 1
                self.passed.notify_all()

    async def another_pass(self) -> None:
        """Wake the relay and wait until it has claimed again (or found nothing to claim)."""
        async with asyncio.timeout(WAIT_S), self.passed:
            seen = self.passes
            self.wake.set()
            await self.passed.wait_for(lambda: self.passes > seen)


async def test_no_more_posts_at_once_than_the_bound(
    wired: tuple[Env, Hook, str], running: Callable[[Relay], None]
) -> None:
    env, hook, client_id = wired
    broker = env.broker.app[BROKER]
    hook.hold_all = asyncio.Event()
    ids = await _write(env, client_id, [(f"s{i}", 0) for i in range(10)])
    relay = CountingRelay(broker, max_in_flight=3)
    running(relay)
    await hook.until(lambda: len(hook.received) == 3)
    for _ in range(2):  # woken while every slot is taken, it claims nothing more
        await relay.another_pass()
    assert len(hook.received) == 3
    assert relay.in_flight == 3
    hook.hold_all.set()  # from now on each post returns at once
    await _until_delivered(broker, ids)
    assert sorted(hook.ids()) == sorted(ids)  # each once
    assert hook.most_busy == 3  # the bound was reached and never passed
    assert relay.in_flight == 0


async def test_a_slow_post_does_not_hold_back_other_subjects_or_new_rows(
    wired: tuple[Env, Hook, str], running: Callable[[Relay], None]
) -> None:
    env, hook, client_id = wired
    broker = env.broker.app[BROKER]
    hook.held["slow"] = asyncio.Event()
    [stuck, *others] = await _write(env, client_id, [("slow", 0), ("a", 0), ("b", 0)])
    relay = Relay(broker, max_in_flight=4)
    running(relay)
    await _until_delivered(broker, others)  # while the first row's post is still held
    assert hook.ids("slow") == [stuck]
    # a row written now is picked up at the relay's wake-up, past the held post as well
    [late] = await _write(env, client_id, [("c", 0)])
    relay.wake.set()
    await _until_delivered(broker, [late])
    assert stuck not in await _delivered(broker)
    hook.held["slow"].set()
    await _until_delivered(broker, [stuck])
    assert sorted(hook.ids()) == sorted([stuck, *others, late])


async def test_one_subjects_messages_go_one_at_a_time_in_order_across_a_retry(
    wired: tuple[Env, Hook, str], running: Callable[[Relay], None]
) -> None:
    env, hook, client_id = wired
    broker = env.broker.app[BROKER]
    ids = await _write(env, client_id, [("s", n) for n in range(6)] + [("t", 0), ("t", 1)])
    mine, theirs = ids[:6], ids[6:]
    hook.fail_first = {mine[0]}
    relay = Relay(broker, max_in_flight=8)
    relay.rng.seed(7)
    first = await relay.run_once()  # the first of "s" is refused: the rest of "s" waits
    assert hook.ids("s") == [mine[0]]
    assert hook.ids("t") == theirs  # another subject is not held back
    assert first == 2
    env.clock.now += timedelta(minutes=10)  # its retry is due
    running(relay)
    relay.wake.set()
    await _until_delivered(broker, mine)
    assert hook.ids("s") == [mine[0], *mine]  # the retry first, then the others in order
    assert hook.most_per_subject == 1


async def test_concurrent_passes_of_one_relay_never_post_a_row_twice(
    wired: tuple[Env, Hook, str],
) -> None:
    env, hook, client_id = wired
    broker = env.broker.app[BROKER]
    ids = await _write(env, client_id, [(f"s{i % 7}", i) for i in range(40)])
    relay = Relay(broker, max_in_flight=5)
    passes = [relay.run_once() for _ in range(3)]
    delivered = sum(await asyncio.gather(*passes))
    assert delivered == 40
    assert sorted(hook.ids()) == sorted(ids)
    assert hook.most_busy <= 5


@pytest.mark.postgres
async def test_a_claimed_row_is_leased_to_its_relay_until_the_lease_runs_out(
    tmp_path: Path, postgres_url: str, aiohttp_server: ServerFactory
) -> None:
    """Two broker processes (here two apps on one database): while one relay posts a row, the
    other does not claim it; if the first dies mid-post, the other takes the row over once the
    lease has run out, and the first one's late outcome is not counted."""
    env = await start(tmp_path, postgres_url, relay_idle_s=60)
    hook = Hook()
    hook.hold_first = asyncio.Event()
    app = web.Application()
    app.router.add_post("/webhook", hook.handle)
    server = await aiohttp_server(app)
    other = TestServer(create_broker(env.broker_settings, clock=env.clock))
    try:
        resp = await env.broker.post(
            "/admin/v1/platform-clients",
            json={"name": "bot", "webhook_url": str(server.make_url("/webhook"))},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        client_id = (await resp.json())["client_id"]
        await other.start_server()
        [row] = await _write(env, client_id, [("s", 0)])
        first = Relay(env.broker.app[BROKER])
        second = Relay(other.app[BROKER])
        posting = asyncio.create_task(first.run_once())
        await hook.until(lambda: len(hook.received) == 1)
        assert await second.run_once() == 0  # leased: not claimed, not posted
        assert hook.ids() == [row]
        env.clock.now += CLAIM_LEASE + timedelta(seconds=1)  # the first relay "died"
        assert await second.run_once() == 1  # taken over
        hook.hold_first.set()  # the first relay's post comes back after all
        assert await posting == 0  # its late outcome does not count
        assert hook.ids() == [row, row]  # posted twice: the platform de-duplicates by id
        assert await _delivered(env.broker.app[BROKER]) == {row}
    finally:
        await other.close()
        await stop(env)


async def test_a_relay_woken_as_it_is_stopped_still_stops(wired: tuple[Env, Hook, str]) -> None:
    """Stopping the broker cancels the relay; a row written at that very moment wakes it. On
    Python 3.11 ``asyncio.wait_for`` returns the wake-up and drops the cancellation, and the
    relay (and the broker's shutdown with it) never ended."""
    env, _, _ = wired
    relay = CountingRelay(env.broker.app[BROKER], max_in_flight=3)
    task = asyncio.create_task(relay.run_forever(idle_s=60))
    await relay.another_pass()
    await asyncio.sleep(0.05)  # past its claim pass: it waits to be woken again
    relay.wake.set()  # the wake-up's task is stepped first, then the cancellation
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=WAIT_S)
    assert task in done and task.cancelled()


@contextlib.asynccontextmanager
async def _idle_relay_with_a_row(
    tmp_path: Path, postgres_url: str, aiohttp_server: ServerFactory
) -> AsyncIterator[tuple[Env, Hook, str, asyncpg.Connection]]:
    """A broker whose relay idles (polls every 60 s), its platform's webhook, a due row written
    without waking the relay, and a connection of "another process"."""
    env = await start(tmp_path, postgres_url, relay_idle_s=60)
    hook = Hook()
    app = web.Application()
    app.router.add_post("/webhook", hook.handle)
    server = await aiohttp_server(app)
    try:
        resp = await env.broker.post(
            "/admin/v1/platform-clients",
            json={"name": "bot", "webhook_url": str(server.make_url("/webhook"))},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        client_id = (await resp.json())["client_id"]
        await asyncio.sleep(0.5)  # the broker's relay has made its first pass: it idles
        [row] = await _write(env, client_id, [("s", 0)])  # no wake-up in this process
        dsn = postgres_dsn(postgres_url)
        assert dsn is not None
        other = await asyncpg.connect(dsn)
        try:
            yield env, hook, row, other
        finally:
            await other.close()
        await _until_delivered(env.broker.app[BROKER], [row])
    finally:
        await stop(env)


@pytest.mark.postgres
async def test_a_row_another_process_commits_wakes_the_relay_at_once(
    tmp_path: Path, postgres_url: str, aiohttp_server: ServerFactory
) -> None:
    """On PostgreSQL the relay listens for ``NOTIFY`` (sent by the group commit of bank events
    in whichever broker process committed the rows): a row written elsewhere is posted now,
    not at the next poll (60 s here)."""
    async with _idle_relay_with_a_row(tmp_path, postgres_url, aiohttp_server) as (
        _,
        hook,
        row,
        other,
    ):
        await other.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        await hook.until(lambda: hook.ids() == [row])


@pytest.mark.postgres
async def test_its_own_notify_is_skipped_and_others_wake_it_once(
    tmp_path: Path, postgres_url: str, aiohttp_server: ServerFactory
) -> None:
    """A ``NOTIFY`` from this broker's own commit does not wake its relay again (the commit
    woke it in-process); a burst of them from other brokers wakes it once, a moment later."""
    async with _idle_relay_with_a_row(tmp_path, postgres_url, aiohttp_server) as (
        env,
        hook,
        row,
        other,
    ):
        instance = env.broker.app[BROKER].instance
        claims = _claims()
        await other.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, instance)
        await asyncio.sleep(0.5)
        assert hook.ids() == [] and _claims() == claims  # its own: not woken
        for _ in range(20):
            await other.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, "another")
        await hook.until(lambda: hook.ids() == [row])
        await asyncio.sleep(0.3)
        assert _claims() - claims <= 2  # the burst woke it once (and the post's end again)


def _claims() -> float:
    """The relays' claims so far in this process (``chatbank_outbox_claims_total``)."""
    return sum(
        REGISTRY.get_sample_value("chatbank_outbox_claims_total", {"found": found}) or 0.0
        for found in ("rows", "none")
    )
