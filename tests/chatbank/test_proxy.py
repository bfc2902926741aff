"""The development load balancer: requests go round-robin, a backend that refuses connections is
skipped, and a backend that fails mid-request is a 502 (the request is not sent twice)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chatbank.cli import build_parser
from chatbank.proxy import create_proxy
from tests.consent.broker_env import free_port


def backend(name: str, seen: Counter[str]) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        seen[name] += 1
        body = await request.read()
        return web.json_response(
            {
                "backend": name,
                "path": request.path_qs,
                "body": body.decode(),
                "host": request.host,
                "secret": request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""),
            },
            status=201,
        )

    async def hang_up(request: web.Request) -> web.Response:
        seen[name] += 1
        assert request.transport is not None
        request.transport.abort()  # dies mid-request
        await asyncio.sleep(1)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hang-up", hang_up)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def backends() -> AsyncIterator[tuple[list[TestServer], Counter[str]]]:
    seen: Counter[str] = Counter()
    servers = [TestServer(backend(n, seen), host="127.0.0.1") for n in ("a", "b")]
    for s in servers:
        await s.start_server()
    yield servers, seen
    for s in servers:
        await s.close()


async def test_requests_go_round_robin_with_path_body_and_headers(
    backends: tuple[list[TestServer], Counter[str]],
) -> None:
    servers, seen = backends
    urls = [str(s.make_url("")).rstrip("/") for s in servers]
    async with TestClient(TestServer(create_proxy(urls))) as client:
        answers = []
        for i in range(4):
            resp = await client.post(
                f"/broker/events?n={i}",
                data=b"signed-body",
                headers={"X-Telegram-Bot-Api-Secret-Token": "s3"},
            )
            assert resp.status == 201
            answers.append(await resp.json())
    assert [a["backend"] for a in answers] == ["a", "b", "a", "b"]
    assert answers[3]["path"] == "/broker/events?n=3"
    assert answers[0]["body"] == "signed-body" and answers[0]["secret"] == "s3"
    assert answers[0]["host"].startswith("127.0.0.1:")  # the proxy's address, as a LB keeps it
    assert seen == Counter({"a": 2, "b": 2})


async def test_a_backend_that_is_down_is_skipped(
    backends: tuple[list[TestServer], Counter[str]],
) -> None:
    servers, seen = backends
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with TestClient(TestServer(create_proxy([dead, str(servers[0].make_url(""))]))) as c:
        statuses = [(await c.get("/x")).status for _ in range(4)]
    assert statuses == [201] * 4 and seen["a"] == 4


async def test_a_backend_failing_mid_request_is_a_502_and_not_retried(
    backends: tuple[list[TestServer], Counter[str]],
) -> None:
    servers, seen = backends
    urls = [str(s.make_url("")).rstrip("/") for s in servers]
    async with TestClient(TestServer(create_proxy(urls))) as client:
        resp = await client.post("/hang-up", data=b"once")
        assert resp.status == 502
        assert (await resp.json())["error"] == "bad_gateway"
    assert sum(seen.values()) == 1  # the other backend never saw it


async def test_no_backend_up_is_a_502() -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    async with TestClient(TestServer(create_proxy(dead))) as client:
        resp = await client.get("/")
        assert resp.status == 502 and (await resp.json())["error"] == "no_backend"


def test_the_cluster_command_takes_counts_and_both_databases() -> None:
    args = build_parser().parse_args(
        [
            "cluster",
            "--brokers",
            "3",
            "--bots",
            "2",
            "--database-url",
            "postgresql://db/broker",
            "--bot-database-url",
            "postgresql://db/bot",
        ]
    )
    assert (args.brokers, args.bots, args.database_url, args.bot_database_url) == (
        3,
        2,
        "postgresql://db/broker",
        "postgresql://db/bot",
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["cluster", "--database-url", "postgresql://db/broker"])
