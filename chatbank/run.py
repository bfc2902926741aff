"""``chatbank up``: every service that exists, in one process, on the embedded defaults.

Today that is the mock banks; the broker, the bot and the local chat join here as they land.
Each service prints a progress line as it comes up; Ctrl-C (or SIGTERM) shuts all down cleanly.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from aiohttp import web

from bank_mock.app import create_app as create_bank
from bank_mock.banks import BANKS, password, username
from bank_mock.settings import BankSettings


def _say(text: str) -> None:
    print(text, flush=True)


async def run_up(
    folder: Path, *, bank: BankSettings | None = None, stop: asyncio.Event | None = None
) -> None:
    """Start the services, print where to go, and wait until ``stop`` is set or a signal comes."""
    started = time.perf_counter()
    settings = bank or BankSettings()
    settings = settings.model_copy(update={"signing_key_dir": str(folder / "keys" / "banks")})
    _say(f"chatbank: starting in {folder}")
    runner = web.AppRunner(create_bank(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    _say(f"  ✔ mock banks     {settings.base_url()}/banks  ({len(BANKS)} banks)")
    _say(f"ready in {time.perf_counter() - started:.1f} s\n")
    _say(
        "Test customers (every bank): "
        + ", ".join(f"{username(i)} / {password(i)}" for i in (1, 2, 3))
    )
    for profile in BANKS:
        dashboard = f"{settings.base_url()}/banks/{profile.bank_id}/dashboard"
        _say(f"  {profile.name:<18} dashboard: {dashboard}")
    _say("\nPress Ctrl-C to stop.")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        _say("chatbank: shutting down …")
        await runner.cleanup()
        _say("chatbank: stopped")
