"""``chatbank up``: every service that exists, in one process, on the embedded defaults.

Today that is the mock banks and the consent broker (SQLite under the data folder, its KEK in
``data/keys``); the bot and the local chat join here as they land. Each service prints a progress
line as it comes up; Ctrl-C (or SIGTERM) shuts all down cleanly.
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
from consent.app import create_app as create_broker
from consent.settings import BrokerSettings


def _say(text: str) -> None:
    print(text, flush=True)


async def run_up(
    folder: Path,
    *,
    bank: BankSettings | None = None,
    broker: BrokerSettings | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the services, print where to go, and wait until ``stop`` is set or a signal comes."""
    started = time.perf_counter()
    settings = bank or BankSettings()
    settings = settings.model_copy(update={"signing_key_dir": str(folder / "keys" / "banks")})
    _say(f"chatbank: starting in {folder}")
    runners: list[web.AppRunner] = []
    bank_runner = web.AppRunner(create_bank(settings), access_log=None)
    await bank_runner.setup()
    runners.append(bank_runner)
    await web.TCPSite(bank_runner, settings.host, settings.port).start()
    _say(f"  ✔ mock banks     {settings.base_url()}/banks  ({len(BANKS)} banks)")
    broker_settings = (broker or BrokerSettings()).model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{folder / 'consent.db'}",
            "keyring_file": str(folder / "keys" / "consent-kek"),
            "bank_directory_url": f"{settings.base_url()}/banks",
        }
    )
    broker_runner = web.AppRunner(create_broker(broker_settings), access_log=None)
    await broker_runner.setup()  # migrates the database and opens the vault
    runners.append(broker_runner)
    await web.TCPSite(broker_runner, broker_settings.host, broker_settings.port).start()
    _say(f"  ✔ consent broker {broker_settings.base_url()}/openapi.json  (SQLite, migrated)")
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
        for runner in reversed(runners):
            await runner.cleanup()
        _say("chatbank: stopped")
