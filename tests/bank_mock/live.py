"""A mock bank served from a background thread, for synchronous (Hypothesis) tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from bank_mock.app import create_app
from bank_mock.settings import BankSettings


@contextmanager
def serve_in_thread(settings: BankSettings) -> Iterator[tuple[str, int, web.Application]]:
    """Yield (host, port, app) of a bank running on 127.0.0.1 until the block ends."""
    with serve_app_in_thread(create_app(settings), settings.port) as served:
        yield served


@contextmanager
def serve_app_in_thread(
    app: web.Application, port_wanted: int = 0
) -> Iterator[tuple[str, int, web.Application]]:
    """Serve any aiohttp app from a background thread with its own event loop."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    ready = threading.Event()
    port: list[int] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port_wanted)
        await site.start()
        server = site._server
        assert server is not None
        port.append(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    assert ready.wait(30), "bank did not start"
    try:
        yield "127.0.0.1", port[0], app
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
