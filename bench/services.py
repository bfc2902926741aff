"""The mock bank and the broker as benchmark processes, and linking a subject by the sandbox's
approval shortcut: shared by the benchmarks that drive the broker."""

from __future__ import annotations

import faulthandler
import signal
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from yarl import URL

from bot.runtime import BotRuntime
from bot.settings import BotSettings
from chatbank.wiring import BOT_WEBHOOK_BATCH

ADMIN = "bench-admin"


def dump_stacks_on_sigusr1() -> None:
    """Let a benchmark ask a process that ignores SIGTERM where it is stuck."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def serve_bank(port: int, customers: int) -> None:
    """Run the mock banks on ``port`` (a process target)."""
    dump_stacks_on_sigusr1()
    from bank_mock.app import create_app
    from bank_mock.settings import BankSettings

    settings = BankSettings(
        port=port,
        customers_per_bank=customers,
        access_token_ttl_s=3600,
        # every customer's history stays cached (a bench booking round-robin over more
        # accounts than the LRU holds would rebuild a 90-day history per payment)
        ledger_cache_accounts=max(100, 2 * customers),
    )
    web.run_app(create_app(settings), host="127.0.0.1", port=port, print=None, access_log=None)


def serve_broker(port: int, bank_port: int, db: str, ring: str, overrides: dict[str, Any]) -> None:
    """Run the broker on ``port`` against the banks on ``bank_port`` (a process target);
    ``overrides`` are further :class:`BrokerSettings` fields."""
    dump_stacks_on_sigusr1()
    from consent.app import create_app
    from consent.settings import BrokerSettings
    from ops.gc_tuning import tune_gc

    settings = BrokerSettings(
        port=port,
        database_url=db,
        bank_directory_url=f"http://127.0.0.1:{bank_port}/banks",
        keyring=ring,
        admin_token=ADMIN,
        **overrides,
    )
    app = create_app(settings)
    tune_gc(app)  # as python -m consent runs it
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def link(
    http: aiohttp.ClientSession,
    broker: str,
    bank: str,
    headers: dict[str, str],
    subject: str,
    scopes: list[str],
    username: str = "demo1",
    receipts: bool = False,
) -> None:
    """Create a Northwind consent for ``subject`` and approve it as ``username`` at the bank
    (with ``receipts``: new card payments come as receipts)."""
    async with http.post(
        f"{broker}/v1/subjects/{subject}/consents",
        json={"bank_id": "northwind", "scopes": scopes, **({"receipts": True} if receipts else {})},
        headers=headers,
    ) as resp:
        url = URL((await resp.json())["authorization_url"])
    body = {
        "username": username,
        "redirect_uri": url.query["redirect_uri"],
        "code_challenge": url.query["code_challenge"],
        "scopes": url.query["scope"].split(),
    }
    approve = f"{bank}/sandbox/banks/northwind/consents/{url.query['consent_id']}/approve"
    async with http.post(approve, json=body) as resp:
        code = (await resp.json())["code"]
    async with http.get(
        f"{broker}/callback/northwind", params={"state": url.query["state"], "code": code}
    ) as resp:
        assert resp.status == 200, await resp.text()


async def platform_bot(
    http: aiohttp.ClientSession,
    broker: str,
    *,
    chat_port: int,
    bot_port: int,
    database_url: str,
    token: str,
    max_messages_per_s: float,
) -> tuple[dict[str, str], BotRuntime]:
    """Register the bot as the broker's platform client (webhook at ``bot_port``) and start it
    against localchat at ``chat_port``; returns the client's request headers and the bot."""
    async with http.post(
        f"{broker}/admin/v1/platform-clients",
        json={
            "name": "bot",
            "webhook_url": f"http://127.0.0.1:{bot_port}/broker/events",
            "webhook_batch_max": BOT_WEBHOOK_BATCH,
        },
        headers={"Authorization": f"Bearer {ADMIN}"},
    ) as resp:
        client = await resp.json()
    auth = {"Authorization": f"Bearer {client['credential']}", "X-Purpose": "chat-service"}
    settings = BotSettings(
        token=token,
        api_base_url=f"http://127.0.0.1:{chat_port}/bot",
        broker_url=broker,
        broker_credential=SecretStr(client["credential"]),
        broker_webhook_secret=SecretStr(client["webhook_secret"]),
        database_url=database_url,
        port=bot_port,
        max_messages_per_s=max_messages_per_s,
    )
    runtime = BotRuntime(settings)
    await runtime.start()
    return auth, runtime
