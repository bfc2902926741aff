"""A browser tab that closes mid-stream is not an error: nothing is logged above INFO."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from localchat.app import create_app
from localchat.settings import Settings


@pytest.fixture
async def chat_url() -> AsyncIterator[str]:
    """localchat served as ``chatbank up`` serves it (an AppRunner: handlers are not cancelled
    when the browser goes away, unlike aiohttp's test server)."""
    runner = web.AppRunner(create_app(Settings()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _drop(url: str, path: str, *, read_headers: bool) -> None:
    """Open ``path`` as a browser would (reading the start of the answer, or not: a long poll
    answers only later), then go away."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n".encode())
    await writer.drain()
    if read_headers:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    else:
        await asyncio.sleep(0.1)  # let the server start waiting
    writer.transport.abort()  # as a closed tab: the socket is just gone


async def test_closing_the_chat_page_mid_stream_logs_no_error(
    chat_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        await _drop(chat_url, "/api/events", read_headers=True)
        await _drop(chat_url, "/api/changes?after=0&timeout=30", read_headers=False)
    async with aiohttp.ClientSession() as session:
        for text in ("one", "two"):  # each change makes the dropped streams write again
            body = {"user_id": 1001, "text": text}
            async with session.post(f"{chat_url}/api/send", json=body) as resp:
                assert resp.status == 200
            await asyncio.sleep(0.2)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [], [r.getMessage() for r in errors]
    assert "Traceback" not in caplog.text and "closing transport" not in caplog.text
