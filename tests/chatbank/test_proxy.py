"""The cluster's load balancers, the built-in one and HAProxy, behave alike: requests go
round-robin, a backend that refuses connections is skipped, and a backend that fails mid-request
is a 502 (the request is not sent twice)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from chatbank.cli import build_parser
from chatbank.haproxy import HAProxy, config_text, haproxy_path, logged_errors
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


Proxy = Callable[[list[str]], contextlib.AbstractAsyncContextManager[str]]


@pytest.fixture(params=["python", "haproxy"])
def proxy(request: pytest.FixtureRequest, tmp_path: Path) -> Proxy:
    """Start a proxy of either kind in front of some backends; yields its base URL."""
    if request.param == "haproxy" and haproxy_path() is None:
        pytest.skip("haproxy is not installed (make test installs it with apt-get when root)")

    @contextlib.asynccontextmanager
    async def start(urls: list[str]) -> AsyncIterator[str]:
        port = free_port()
        if request.param == "haproxy":
            haproxy = HAProxy(port, urls, tmp_path)
            await haproxy.start()
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                await haproxy.close()
            return
        runner = web.AppRunner(create_proxy(urls), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()

    return start


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
    backends: tuple[list[TestServer], Counter[str]], proxy: Proxy
) -> None:
    servers, seen = backends
    urls = [str(s.make_url("")).rstrip("/") for s in servers]
    async with proxy(urls) as base, aiohttp.ClientSession(base) as client:
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
    backends: tuple[list[TestServer], Counter[str]], proxy: Proxy
) -> None:
    servers, seen = backends
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    live = str(servers[0].make_url("")).rstrip("/")
    async with proxy([dead, live]) as base, aiohttp.ClientSession(base) as c:
        statuses = []
        for _ in range(4):  # a POST too: it never reached the dead backend, so it is resent
            async with c.post("/x", data=b"once") as resp:
                statuses.append(resp.status)
    assert statuses == [201] * 4 and seen["a"] == 4


async def test_a_backend_failing_mid_request_is_a_502_and_not_retried(
    backends: tuple[list[TestServer], Counter[str]], proxy: Proxy
) -> None:
    servers, seen = backends
    urls = [str(s.make_url("")).rstrip("/") for s in servers]
    async with proxy(urls) as base, aiohttp.ClientSession(base) as client:
        resp = await client.post("/hang-up", data=b"once")
        assert resp.status == 502
    assert sum(seen.values()) == 1  # the other backend never saw it


async def test_the_built_in_proxy_names_its_502s() -> None:
    server = TestServer(backend("a", Counter()), host="127.0.0.1")
    await server.start_server()
    urls = [str(server.make_url("")).rstrip("/"), f"http://127.0.0.1:{free_port()}"]
    runner = web.AppRunner(create_proxy(urls), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
            resp = await client.post("/hang-up", data=b"once")
            assert resp.status == 502 and (await resp.json())["error"] == "bad_gateway"
        await server.close()  # now neither backend listens
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
            resp = await client.get("/")
            assert resp.status == 502 and (await resp.json())["error"] == "no_backend"
    finally:
        await runner.cleanup()
        await server.close()


async def test_no_backend_up_is_a_502(proxy: Proxy) -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    async with proxy(dead) as base, aiohttp.ClientSession(base) as client:
        resp = await client.get("/")
        assert resp.status in (502, 503)  # HAProxy: 503, no server could take it


def test_the_haproxy_configuration_retries_only_connections_that_failed() -> None:
    text = config_text(8002, ["http://127.0.0.1:1", "http://127.0.0.1:2"])
    assert "retry-on conn-failure" in text and "option redispatch 1" in text
    assert "server b2 127.0.0.1:2" in text and "bind 127.0.0.1:8002" in text
    with pytest.raises(ValueError, match="expected http://host:port"):
        config_text(8002, ["https://example.org"])
    with pytest.raises(ValueError, match="at least one backend"):
        config_text(8002, [])


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


def test_haproxy_log_lines_read_as_status_and_termination_state() -> None:
    log = (
        "127.0.0.1:46442 [03/Dec/2026:06:33:11.977] in pool/b1 0/0/0/-1/1 502 209 - - SH-- "
        '1/1/0/0/0 0/0 "POST /h HTTP/1.1"\n'
        "[NOTICE]   (1) : haproxy version is 2.6.12\n"
    )
    assert logged_errors(log) == ["502 SH--"]


START_AND_WAIT = """
import asyncio, sys
from pathlib import Path
from chatbank.haproxy import HAProxy

async def main() -> None:
    proxy = HAProxy(int(sys.argv[1]), ["http://127.0.0.1:1"], Path(sys.argv[2]))
    await proxy.start()
    assert proxy.popen is not None
    print(proxy.popen.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_haproxy_does_not_outlive_a_killed_cluster(tmp_path: Path) -> None:
    """``kill -9`` of the process that started HAProxy (no clean-up runs) stops HAProxy too, so
    its port is free for the next start."""
    if haproxy_path() is None:
        pytest.skip("haproxy is not installed (make test installs it with apt-get when root)")
    port = free_port()
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        START_AND_WAIT,
        str(port),
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
    )
    assert parent.stdout is not None
    child = int((await asyncio.wait_for(parent.stdout.readline(), 20)).decode())
    assert _state(child) not in ("gone", "Z")
    parent.kill()
    await parent.wait()
    for _ in range(100):
        if _state(child) in ("gone", "Z"):
            break
        await asyncio.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("haproxy outlived the process that started it")
    haproxy = HAProxy(port, ["http://127.0.0.1:1"], tmp_path / "again")
    await haproxy.start()  # the port is free again
    await haproxy.close()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
