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
    loop = asyncio.new_event_loop()
    app = create_app(settings)
    runner = web.AppRunner(app)
    ready = threading.Event()
    port: list[int] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
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
