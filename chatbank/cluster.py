"""``chatbank cluster``: N consent brokers and N bots (webhook mode) on PostgreSQL, each its own
process, each group behind a round-robin proxy (:mod:`chatbank.proxy`, or HAProxy:
:mod:`chatbank.haproxy`), with the mock banks and the local chat beside them. The same
processes, started by hand on several machines behind a real load balancer, are the production
layout (see the README, "Running several processes").

The broker and the bot keep separate databases: they sit on opposite sides of the trust
boundary, and the platform never reads the broker's tables.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.settings import LOCAL_TOKEN
from chatbank.haproxy import HAProxy
from chatbank.proxy import create_proxy
from chatbank.wiring import BOT_WEBHOOK_BATCH

ADMIN_HEADER = "Authorization"
READY_TIMEOUT_S = 60.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Process:
    """One service process: how to start it again after it stopped or was killed."""

    name: str
    module: str
    env: dict[str, str]
    log: Path
    port: int
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **self.env}
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", self.module],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """``kill -9``: no clean-up, no goodbye."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ClusterConfig:
    broker_database_url: str
    bot_database_url: str
    folder: Path
    brokers: int = 2
    bots: int = 2
    broker_port: int = 8002  # the brokers' proxy; the processes take free ports
    bot_port: int = 8004  # the bots' proxy
    bank_port: int = 8001
    chat_port: int = 8003
    bot_token: str = LOCAL_TOKEN
    start_chat: bool = True  # False: a local chat (or a Bot API) already listens on chat_port
    bank_env: dict[str, str] = field(default_factory=dict)
    broker_env: dict[str, str] = field(default_factory=dict)
    bot_env: dict[str, str] = field(default_factory=dict)
    chat_env: dict[str, str] = field(default_factory=dict)
    broker_module: str = "consent"  # what ``python -m`` runs as a broker (benchmarks trace it)
    bot_module: str = "bot"
    bank_module: str = "bank_mock"
    # what stands in front of the brokers and the bots: "python" (chatbank.proxy, in this
    # process) or "haproxy" (chatbank.haproxy, Debian's haproxy, as production would run)
    proxy: str = "python"


def _secret(folder: Path, name: str, make: Any = lambda: secrets.token_urlsafe(32)) -> str:
    from chatbank.wiring import _write_private

    path = folder / "keys" / name
    if not path.exists():
        _write_private(path, str(make()))
    return path.read_text().strip()


def _keyring() -> str:
    from consent.vault.keyring import generate_kek

    return f"1:{base64.b64encode(generate_kek()).decode()}"


class Cluster:
    """Start, kill, restart and stop the processes of a :class:`ClusterConfig`."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.bank: Process | None = None
        self.chat: Process | None = None
        self.brokers: list[Process] = []
        self.bots: list[Process] = []
        self._proxies: list[Callable[[], Awaitable[None]]] = []  # each proxy's close
        self.haproxies: list[HAProxy] = []  # with proxy="haproxy"
        self.client: dict[str, Any] = {}

    @property
    def broker_url(self) -> str:
        return f"http://127.0.0.1:{self.config.broker_port}"

    @property
    def bot_url(self) -> str:
        return f"http://127.0.0.1:{self.config.bot_port}"

    @property
    def bank_url(self) -> str:
        return f"http://127.0.0.1:{self.config.bank_port}"

    @property
    def chat_url(self) -> str:
        return f"http://127.0.0.1:{self.config.chat_port}"

    def admin_token(self) -> str:
        return _secret(self.config.folder, "broker-admin-token")

    async def start(self) -> None:
        from bot.store.db import upgrade_async as upgrade_bot
        from consent.store.migrate import upgrade_async as upgrade_broker

        c = self.config
        (c.folder / "logs").mkdir(parents=True, exist_ok=True)
        # migrate once, before any process starts, so N processes never race on a fresh schema
        await upgrade_broker(c.broker_database_url)
        await upgrade_bot(c.bot_database_url)
        self.bank = Process(
            "bank",
            c.bank_module,
            {
                "BANK_PORT": str(c.bank_port),
                "BANK_SIGNING_KEY_DIR": str(c.folder / "keys" / "banks"),
                **c.bank_env,
            },
            c.folder / "logs" / "bank.log",
            c.bank_port,
        )
        self.chat = Process(
            "localchat",
            "localchat",
            {"LOCALCHAT_PORT": str(c.chat_port), "LOCALCHAT_BOT_TOKEN": c.bot_token, **c.chat_env},
            c.folder / "logs" / "localchat.log",
            c.chat_port,
        )
        broker_env = {
            "CONSENT_DATABASE_URL": c.broker_database_url,
            "CONSENT_PUBLIC_URL": self.broker_url,
            "CONSENT_BANK_DIRECTORY_URL": f"{self.bank_url}/banks",
            "CONSENT_KEYRING": _secret(c.folder, "consent-kek-spec", _keyring),
            "CONSENT_ADMIN_TOKEN": self.admin_token(),
            "CONSENT_HANDLE_SECRET": _secret(c.folder, "broker-handle-secret"),
            **c.broker_env,
        }
        self.brokers = [
            Process(
                f"broker-{i + 1}",
                c.broker_module,
                {**broker_env, "CONSENT_PORT": str(port)},
                c.folder / "logs" / f"broker-{i + 1}.log",
                port,
            )
            for i, port in enumerate(free_port() for _ in range(c.brokers))
        ]
        if not c.start_chat:
            self.chat = None
        for p in (self.bank, self.chat, *self.brokers):
            if p is not None:
                p.start()
        await self._proxy(c.broker_port, [p.url for p in self.brokers])
        await wait_ready(f"{self.bank_url}/banks")
        await wait_ready(f"{self.chat_url}/")
        for p in self.brokers:
            await wait_ready(f"{p.url}/openapi.json")
        self.client = await self._register_bot()
        bot_env = {
            "BOT_MODE": "webhook",
            "BOT_TOKEN": c.bot_token,
            "BOT_API_BASE_URL": f"{self.chat_url}/bot",
            "BOT_BROKER_URL": self.broker_url,
            "BOT_BROKER_CREDENTIAL": self.client["credential"],
            "BOT_BROKER_WEBHOOK_SECRET": self.client["webhook_secret"],
            "BOT_DATABASE_URL": c.bot_database_url,
            "BOT_PUBLIC_URL": self.bot_url,
            "BOT_TELEGRAM_SECRET_TOKEN": _secret(c.folder, "telegram-secret-token"),
            **c.bot_env,
        }
        self.bots = [
            Process(
                f"bot-{i + 1}",
                c.bot_module,
                {**bot_env, "BOT_PORT": str(port)},
                c.folder / "logs" / f"bot-{i + 1}.log",
                port,
            )
            for i, port in enumerate(free_port() for _ in range(c.bots))
        ]
        for p in self.bots:
            p.start()
        await self._proxy(c.bot_port, [p.url for p in self.bots])
        for p in self.bots:
            await wait_ready(f"{p.url}/healthz")

    async def _proxy(self, port: int, backends: list[str]) -> None:
        if self.config.proxy == "haproxy":
            haproxy = HAProxy(port, backends, self.config.folder / "proxies")
            await haproxy.start()
            self.haproxies.append(haproxy)
            self._proxies.append(haproxy.close)
            return
        if self.config.proxy != "python":
            raise ValueError(f"unknown proxy {self.config.proxy!r}: python or haproxy")
        runner = web.AppRunner(create_proxy(backends), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self._proxies.append(runner.cleanup)

    async def _register_bot(self) -> dict[str, Any]:
        """The bots' platform client (one for all of them), its webhook the bots' proxy."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.broker_url}/admin/v1/platform-clients",
                json={
                    "name": "chatbank-bot",
                    "webhook_url": f"{self.bot_url}/broker/events",
                    "webhook_batch_max": BOT_WEBHOOK_BATCH,
                },
                headers={ADMIN_HEADER: f"Bearer {self.admin_token()}"},
            ) as resp,
        ):
            body: dict[str, Any] = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"the broker refused to register the bot: {body}")
            return body

    async def restart(self, process: Process, ready_path: str) -> None:
        process.start()
        await wait_ready(f"{process.url}{ready_path}")

    async def stop(self) -> None:
        for p in (*self.bots, *self.brokers, self.chat, self.bank):
            if p is not None:
                await asyncio.to_thread(p.stop)
        for close in reversed(self._proxies):
            await close()
        self._proxies.clear()
        self.haproxies.clear()


async def wait_ready(url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll ``url`` until it answers below 500."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status < 500:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not come up in {timeout_s:g} s")
            await asyncio.sleep(0.1)


async def run_cluster(
    config: ClusterConfig,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Cluster], None] | None = None,
) -> None:
    """``chatbank cluster``: start everything, print where it is, wait for Ctrl-C or SIGTERM (or
    ``stop``); ``on_ready`` is handed the running cluster (tests kill and restart its
    processes)."""
    import signal

    cluster = Cluster(config)
    print(
        f"chatbank cluster: {config.brokers} brokers and {config.bots} bots; logs in "
        f"{config.folder / 'logs'}",
        flush=True,
    )
    try:
        await cluster.start()
        for p in (*cluster.brokers, *cluster.bots):
            print(f"  ✔ {p.name:<9} {p.url}  (pid {p.popen.pid if p.popen else '-'})", flush=True)
        lb = "HAProxy" if config.proxy == "haproxy" else "round-robin proxy"
        print(f"  ✔ brokers   {cluster.broker_url}  ({lb})", flush=True)
        print(f"  ✔ bots      {cluster.bot_url}  ({lb}, Telegram webhook)", flush=True)
        print(f"Open the chat:  {cluster.chat_url}/\nPress Ctrl-C to stop.", flush=True)
        if on_ready is not None:
            on_ready(cluster)
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    finally:
        print("chatbank cluster: stopping …", flush=True)
        await cluster.stop()
