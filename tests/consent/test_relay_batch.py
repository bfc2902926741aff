"""Batched webhook delivery (a platform client registered with ``webhook_batch_max`` > 1): the
relay posts the rows it claimed for that client together, in chunks of up to that many, one
signature and one nonce per request, and records each row's outcome from the platform's
per-id answer exactly as it records a single post's: a status is delivered, ``retry: false`` is
a dead letter with the platform's reason, anything else — a retry, an id left out, a malformed
entry, a request that failed as a whole (not 2xx, a timeout, a body that is not an answer) — is a
retry. A client registered without the field still gets one message per POST, byte for byte the
body it always got."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from consent.api.keys import BROKER
from consent.outbox import relay as relay_module
from consent.outbox.relay import DELIVERED, RETRY, Relay, batch_outcome
from consent.outbox.write import enqueue
from consent.service.broker import Broker
from consent.store.tables import DeadLetterRow, OutboxRow
from tests.consent.broker_env import ADMIN, Env, start, stop

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
MISSING = object()  # an id the answer leaves out


@dataclass
class Platform:
    """The platform's webhook: keeps each request's raw body and signature headers, and answers
    each id with ``answers[id]`` (default ``{"status": "shown"}``; MISSING: left out), or the
    whole request with ``status``/``raw``, or holds every request while ``hold`` is unset."""

    bodies: list[bytes] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    raw: bytes | None = None
    hold: asyncio.Event | None = None
    drop: bool = False  # cut the connection without an answer

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.bodies.append(raw)
        self.signatures.append(request.headers.get("Signature-Input", ""))
        if self.hold is not None:
            await self.hold.wait()
        if self.drop:
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(1)
        if self.raw is not None:
            return web.Response(body=self.raw, status=self.status, content_type="application/json")
        if self.status != 200:
            return web.json_response({"error": "chat_unavailable"}, status=self.status)
        body = json.loads(raw)
        if "events" not in body:
            return web.Response(status=204)
        results = {}
        for message in body["events"]:
            answer = self.answers.get(message["id"], {"status": "shown"})
            if answer is not MISSING:
                results[message["id"]] = answer
        return web.json_response({"results": results})

    def batches(self) -> list[list[dict[str, Any]]]:
        out = []
        for raw in self.bodies:
            body = json.loads(raw)
            out.append(body.get("events", [body]))
        return out

    def ids(self) -> list[str]:
        return [m["id"] for batch in self.batches() for m in batch]


async def _register(env: Env, url: str, batch_max: int | None) -> str:
    extra = {} if batch_max is None else {"webhook_batch_max": batch_max}
    resp = await env.broker.post(
        "/admin/v1/platform-clients",
        json={"name": "bot", "webhook_url": url, **extra},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["client_id"])


@pytest.fixture
async def wired(
    tmp_path: Path, database_url: str, aiohttp_server: ServerFactory
) -> AsyncIterator[tuple[Env, Platform, str]]:
    """A broker whose own relay idles, the platform, and a client batching up to 4."""
    env = await start(tmp_path, database_url, relay_idle_s=60)
    platform = Platform()
    app = web.Application()
    app.router.add_post("/webhook", platform.handle)
    server = await aiohttp_server(app)
    client_id = await _register(env, str(server.make_url("/webhook")), 4)
    yield env, platform, client_id
    await stop(env)


async def _write(env: Env, client_id: str, rows: list[tuple[str, int]]) -> list[str]:
    """Outbox rows for (subject, n), written in this order, one microsecond apart."""
    broker: Broker = env.broker.app[BROKER]
    async with broker.sessions() as session:
        ids = []
        for i, (subject, n) in enumerate(rows):
            ids.append(
                enqueue(
                    session,
                    client_id=client_id,
                    subject_id=subject,
                    kind="consent_expiring",
                    data={"n": n},
                    now=env.clock.now + timedelta(microseconds=i),
                )
            )
        await session.commit()
    env.clock.now += timedelta(seconds=1)  # every row is due
    return ids


async def _outbox(broker: Broker) -> dict[str, OutboxRow]:
    async with broker.sessions() as session:
        return {r.id: r for r in (await session.exec(select(OutboxRow))).all()}


async def _dead(broker: Broker) -> dict[str, str]:
    async with broker.sessions() as session:
        return {d.id: d.reason for d in (await session.exec(select(DeadLetterRow))).all()}


async def test_a_batch_is_posted_in_chunks_and_each_row_delivered_once(
    wired: tuple[Env, Platform, str],
) -> None:
    env, platform, client_id = wired
    broker = env.broker.app[BROKER]
    ids = await _write(env, client_id, [(f"s{i}", 0) for i in range(10)])
    delivered = await Relay(broker, max_in_flight=10).run_once()
    assert delivered == 10
    assert sorted(platform.ids()) == sorted(ids)  # each once
    assert sorted(len(b) for b in platform.batches()) == [2, 4, 4]  # chunks of up to 4
    assert len(set(platform.signatures)) == 3  # one signature (and nonce) per request
    assert all(r.delivered_at is not None for r in (await _outbox(broker)).values())
    # each element is the single message's body, as the platform always received it
    for raw in platform.bodies:
        assert raw.startswith(b'{"events":[{"id":"')
    first = platform.batches()[0][0]
    assert set(first) == {"id", "kind", "subject_id", "data"}


async def test_a_chat_that_blocked_the_bot_is_a_dead_letter_and_the_others_are_delivered(
    wired: tuple[Env, Platform, str],
) -> None:
    env, platform, client_id = wired
    broker = env.broker.app[BROKER]
    blocked, *others = await _write(env, client_id, [(f"s{i}", 0) for i in range(4)])
    platform.answers[blocked] = {"error": "blocked_by_user", "retry": False}
    assert await Relay(broker).run_once() == 3
    assert await _dead(broker) == {blocked: "platform:blocked_by_user"}
    rows = await _outbox(broker)
    assert blocked not in rows
    assert all(rows[i].delivered_at is not None for i in others)
    assert len(platform.bodies) == 1


@pytest.mark.parametrize(
    "failure",
    ["503", "timeout", "dropped", "not_json", "no_results", "one_missing", "one_retry"],
)
async def test_a_failed_batch_is_retried_for_every_row_the_platform_did_not_answer(
    wired: tuple[Env, Platform, str], monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    env, platform, client_id = wired
    broker = env.broker.app[BROKER]
    ids = await _write(env, client_id, [(f"s{i}", 0) for i in range(3)])
    answered: list[str] = []
    if failure == "503":
        platform.status = 503
    elif failure == "timeout":
        monkeypatch.setattr(relay_module, "POST_TIMEOUT_S", 0.3)
        platform.hold = asyncio.Event()
    elif failure == "dropped":  # the platform (or a proxy) hangs up mid-request
        platform.drop = True
    elif failure == "not_json":
        platform.raw = b"<html>ok</html>"
    elif failure == "no_results":
        platform.raw = b'{"status":"shown"}'
    elif failure == "one_missing":
        platform.answers[ids[1]] = MISSING
        answered = [ids[0], ids[2]]
    else:
        platform.answers[ids[1]] = {"error": "chat_unavailable", "retry": True}
        answered = [ids[0], ids[2]]
    relay = Relay(broker)
    assert await relay.run_once() == len(answered)
    rows = await _outbox(broker)
    for i in ids:
        if i in answered:
            assert rows[i].delivered_at is not None
        else:  # never delivered without the platform saying so: retried later
            assert rows[i].delivered_at is None and rows[i].attempts == 1
    assert await _dead(broker) == {}
    # the retry: the platform answers now (the rows it had shown it calls duplicates)
    if platform.hold is not None:
        platform.hold.set()
    platform.status, platform.raw, platform.hold, platform.drop = 200, None, None, False
    platform.answers = {i: {"status": "duplicate"} for i in answered}
    env.clock.now += timedelta(minutes=10)
    assert await relay.run_once() == 3 - len(answered)
    assert all(r.delivered_at is not None for r in (await _outbox(broker)).values())
    retried = [m["id"] for m in platform.batches()[-1]]
    assert sorted(retried) == sorted(set(ids) - set(answered))


async def test_one_subjects_messages_keep_their_order_and_never_share_a_batch(
    wired: tuple[Env, Platform, str],
) -> None:
    env, platform, client_id = wired
    broker = env.broker.app[BROKER]
    rows = [("s", n) for n in range(5)] + [(f"t{i}", 0) for i in range(6)]
    ids = await _write(env, client_id, rows)
    mine = ids[:5]
    platform.answers[mine[1]] = {"error": "chat_unavailable", "retry": True}
    relay = Relay(broker, max_in_flight=16)
    relay.rng.seed(3)
    await relay.run_once()  # s's second message fails: the rest of s waits behind it
    env.clock.now += timedelta(minutes=10)
    platform.answers = {}
    await relay.run_once()
    assert all(r.delivered_at is not None for r in (await _outbox(broker)).values())
    for batch in platform.batches():
        subjects = [m["subject_id"] for m in batch]
        assert len(subjects) == len(set(subjects))
    assert [i for i in platform.ids() if i in mine] == [mine[0], mine[1], *mine[1:]]


async def test_batches_stay_within_the_posts_and_rows_in_flight(
    wired: tuple[Env, Platform, str],
) -> None:
    """Two posts at once at most, six rows in flight at most: the first claim (the target not
    known yet) takes two rows, the next as many as the free post can carry (four) up to six."""
    env, platform, client_id = wired
    broker = env.broker.app[BROKER]
    platform.hold = asyncio.Event()
    ids = await _write(env, client_id, [(f"s{i}", 0) for i in range(20)])
    relay = Relay(broker, max_in_flight=2, max_rows=6)
    task = asyncio.create_task(relay.run_forever(idle_s=60))
    try:
        async with asyncio.timeout(20):
            while len(platform.bodies) < 2:  # the relay is woken until its posts arrive
                relay.wake.set()
                await asyncio.sleep(0.01)
        for _ in range(3):  # woken with every post taken, it claims nothing more
            relay.wake.set()
            await asyncio.sleep(0.1)
        assert [len(b) for b in platform.batches()] == [2, 4]
        assert relay.in_flight == 6
        platform.hold.set()
        async with asyncio.timeout(20):
            while any(r.delivered_at is None for r in (await _outbox(broker)).values()):
                relay.wake.set()
                await asyncio.sleep(0.05)
        assert sorted(platform.ids()) == sorted(ids)
        assert max(len(b) for b in platform.batches()) <= 4
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_client_registered_without_batching_gets_todays_single_body_byte_for_byte(
    tmp_path: Path, database_url: str, aiohttp_server: ServerFactory
) -> None:
    env = await start(tmp_path, database_url, relay_idle_s=60)
    try:
        platform = Platform()
        app = web.Application()
        app.router.add_post("/webhook", platform.handle)
        server = await aiohttp_server(app)
        client_id = await _register(env, str(server.make_url("/webhook")), None)
        broker = env.broker.app[BROKER]
        ids = await _write(env, client_id, [("a", 1), ("b", 2), ("c", 3)])
        assert await Relay(broker).run_once() == 3
        expected = {
            f'{{"id":"{i}","kind":"consent_expiring","subject_id":"{s}","data":{{"n":{n}}}}}'
            for i, (s, n) in zip(ids, [("a", 1), ("b", 2), ("c", 3)], strict=True)
        }
        assert {b.decode() for b in platform.bodies} == expected
    finally:
        await stop(env)


async def test_a_batch_larger_than_the_byte_bound_is_split(
    wired: tuple[Env, Platform, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, platform, client_id = wired
    ids = await _write(env, client_id, [(f"s{i}", 0) for i in range(4)])
    sizes = [
        len(relay_module._message(r)) for r in (await _outbox(env.broker.app[BROKER])).values()
    ]
    bound = 2 * max(sizes) + 2  # two messages a request, not three
    monkeypatch.setattr(relay_module, "BATCH_BYTES", bound)
    assert await Relay(env.broker.app[BROKER]).run_once() == 4
    assert sorted(platform.ids()) == sorted(ids)
    assert [len(b) for b in platform.batches()] == [2, 2]
    assert all(len(b) <= bound + len(b'{"events":[]}') for b in platform.bodies)


@pytest.mark.parametrize("value", [0, 101, "32", True, 2.5, None])
async def test_a_batch_size_other_than_an_integer_from_1_to_100_is_refused(
    wired: tuple[Env, Platform, str], value: object
) -> None:
    env, _, _ = wired
    resp = await env.broker.post(
        "/admin/v1/platform-clients",
        json={"name": "bot", "webhook_url": "http://127.0.0.1:9/x", "webhook_batch_max": value},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert resp.status == 400, value


# --- the outcome of each id, as a property --------------------------------------------------

ANSWERS: dict[str, Any] = {
    "shown": {"status": "shown"},
    "duplicate": {"status": "duplicate"},
    "no_such_user": {"status": "no_such_user"},
    "blocked": {"error": "blocked_by_user", "retry": False},
    "odd_code": {"error": "Not A Code!", "retry": False},
    "retry": {"error": "chat_unavailable", "retry": True},
    "in_progress": {"error": "in_progress", "retry": True},
    "no_retry_flag": {"error": "blocked_by_user"},
    "missing": MISSING,
    "not_an_object": ["shown"],
    "status_and_error": {"status": "shown", "error": "x"},
}
EXPECTED = {
    "shown": DELIVERED,
    "duplicate": DELIVERED,
    "no_such_user": DELIVERED,
    "blocked": "platform:blocked_by_user",
    "odd_code": "gone",
    "retry": RETRY,
    "in_progress": RETRY,
    "no_retry_flag": RETRY,
    "missing": RETRY,
    "not_an_object": RETRY,
    "status_and_error": RETRY,
}


@given(st.sampled_from(sorted(ANSWERS)))
def test_each_answer_maps_to_the_single_posts_outcome(answer: str) -> None:
    entry = ANSWERS[answer]
    assert batch_outcome(None if entry is MISSING else entry) == EXPECTED[answer]


def test_the_relay_records_each_rows_outcome_from_its_own_answer(
    tmp_path: Path, database_url: str
) -> None:
    """Random per-id answers over one live broker: each row ends delivered, a dead letter with
    the platform's reason, or due again with one more attempt, as its own answer says, whatever
    its neighbours in the batch were told."""
    loop = asyncio.new_event_loop()
    env = loop.run_until_complete(start(tmp_path, database_url, relay_idle_s=60))
    platform = Platform()
    app = web.Application()
    app.router.add_post("/webhook", platform.handle)
    server = TestServer(app, host="127.0.0.1")
    loop.run_until_complete(server.start_server())
    client_id = loop.run_until_complete(_register(env, str(server.make_url("/webhook")), 5))
    broker: Broker = env.broker.app[BROKER]
    relay = Relay(broker, max_in_flight=32)
    counter = iter(range(10**6))

    async def example(answers: list[str]) -> None:
        subjects = [(f"p{next(counter)}", 0) for _ in answers]
        ids = await _write(env, client_id, subjects)
        platform.answers = {i: ANSWERS[a] for i, a in zip(ids, answers, strict=True)}
        platform.bodies.clear()
        expected = [EXPECTED[a] for a in answers]
        assert await relay.run_once() == expected.count(DELIVERED)
        rows, dead = await _outbox(broker), await _dead(broker)
        for i, outcome in zip(ids, expected, strict=True):
            if outcome == DELIVERED:
                assert rows[i].delivered_at is not None
            elif outcome == RETRY:
                assert rows[i].delivered_at is None and rows[i].attempts == 1
                assert rows[i].next_attempt_at >= env.clock.now
            else:
                assert i not in rows and dead[i] == outcome
        assert all(len(b) <= 5 for b in platform.batches())
        # the retried rows leave the way for the next example
        async with broker.sessions() as session:
            for i, outcome in zip(ids, expected, strict=True):
                if outcome == RETRY:
                    await session.delete(await session.get(OutboxRow, i))
            await session.commit()

    @settings(max_examples=40)
    @given(st.lists(st.sampled_from(sorted(ANSWERS)), min_size=1, max_size=12))
    def check(answers: list[str]) -> None:
        loop.run_until_complete(example(answers))

    try:
        check()
    finally:
        loop.run_until_complete(server.close())
        loop.run_until_complete(stop(env))
        loop.close()
