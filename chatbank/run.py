"""``chatbank up``: the whole system in one process, on the embedded defaults.

Mock banks, the consent broker (SQLite under the data folder, its KEK in ``data/keys``), the
local chat (a Telegram Bot API stand-in with a web page, on ``LOCALCHAT_PORT``) and the bot.
With a real bot token in ``.env`` the bot talks to Telegram instead, and with
``BOT_API_BASE_URL`` pointing at another Bot API server (not loopback on ``LOCALCHAT_PORT``) it
uses that one; the built-in stand-in is then not started. Each service prints
a progress line as it comes up; Ctrl-C (or SIGTERM) shuts everything down cleanly.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import time
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr
from yarl import URL

from bank_mock.app import create_app as create_bank
from bank_mock.banks import BANKS, password, username
from bank_mock.settings import BankSettings
from bot.runtime import BotRuntime
from bot.settings import LOCAL_TOKEN, TELEGRAM_API, BotSettings
from chatbank import wiring
from chatbank.reach import start_bot
from consent.app import create_app as create_broker
from consent.settings import BrokerSettings
from localchat.app import create_app as create_localchat
from localchat.settings import Settings as LocalchatSettings

LOCAL_API = BotSettings.model_fields["api_base_url"].default


def _say(text: str) -> None:
    print(text, flush=True)


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def is_local_chat(url: str, chat: LocalchatSettings) -> bool:
    """Whether ``url`` is the built-in local chat's Bot API: the default, or loopback (or the
    local chat's own host) on ``LOCALCHAT_PORT``. Its value decides, not whether it was set."""
    if url.rstrip("/") == LOCAL_API:
        return True
    parsed = URL(url)
    return parsed.host in LOOPBACK | {chat.host} and parsed.port == chat.port


def chat_target(bot: BotSettings, chat: LocalchatSettings) -> tuple[BotSettings, bool]:
    """Where the bot's Bot API is, and whether the built-in local chat must run."""
    token = bot.token.get_secret_value()
    if not is_local_chat(bot.api_base_url, chat):
        return bot, False  # another Bot API server was configured
    if token != LOCAL_TOKEN and bot.api_base_url.rstrip("/") == LOCAL_API:
        return bot.model_copy(update={"api_base_url": TELEGRAM_API}), False  # real Telegram
    local = f"http://{chat.host}:{chat.port}/bot"  # follows LOCALCHAT_HOST and LOCALCHAT_PORT
    return bot.model_copy(update={"api_base_url": local}), True


def local_url(host: str, port: int) -> str:
    """How one service reaches another in the same process (the public URLs are for browsers,
    phones and Telegram)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - listening everywhere: loopback reaches it
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def api_setting(url: str, local: bool) -> str:
    """What to check when the Bot API does not answer; a loopback URL on another port is most
    likely a local chat someone meant to move."""
    parsed = URL(url)
    if not local and parsed.host in LOOPBACK:
        return (
            f"BOT_API_BASE_URL in .env (to move the built-in local chat, set "
            f"LOCALCHAT_PORT={parsed.port} instead)"
        )
    return "BOT_API_BASE_URL in .env"


class PortInUseError(RuntimeError):
    """A service's port is taken (often: chatbank is already running)."""

    def __init__(self, service: str, host: str, port: int, setting: str) -> None:
        super().__init__(
            f"{service} cannot listen on {host}:{port}: the address is already in use. "
            f"Is chatbank already running? Stop it, or set {setting} in .env to another port."
        )


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    runners: list[web.AppRunner],
    *,
    service: str,
    setting: str,
) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # the broker migrates its database and opens the vault here
    runners.append(runner)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise PortInUseError(service, host, port, setting) from e
        raise


async def run_up(
    folder: Path,
    *,
    bank: BankSettings | None = None,
    broker: BrokerSettings | None = None,
    bot: BotSettings | None = None,
    chat: LocalchatSettings | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the services, print where to go, and wait until ``stop`` is set or a signal comes."""
    started = time.perf_counter()
    settings = (bank or BankSettings()).model_copy(
        update={
            "signing_key_dir": str(folder / "keys" / "banks"),
            "data_dir": (bank.data_dir if bank and bank.data_dir else str(folder / "bank")),
        }
    )
    _say(f"chatbank: starting in {folder}")
    runners: list[web.AppRunner] = []
    runtime: BotRuntime | None = None
    try:
        await _serve(
            create_bank(settings),
            settings.host,
            settings.port,
            runners,
            service="the mock banks",
            setting="BANK_PORT",
        )
        _say(f"  ✔ mock banks     {settings.base_url()}/banks  ({len(BANKS)} banks)")
        broker_settings = (broker or BrokerSettings()).model_copy(
            update={
                "database_url": f"sqlite+aiosqlite:///{folder / 'consent.db'}",
                "keyring_file": str(folder / "keys" / "consent-kek"),
                # the broker calls the banks next door; browsers get BANK_PUBLIC_URL links
                "bank_directory_url": f"{local_url(settings.host, settings.port)}/banks",
                "admin_token": SecretStr(wiring.admin_token(folder)),
                "handle_secret": SecretStr(wiring.handle_secret(folder)),
            }
        )
        broker_app = create_broker(broker_settings)
        await _serve(
            broker_app,
            broker_settings.host,
            broker_settings.port,
            runners,
            service="the consent broker",
            setting="CONSENT_PORT",
        )
        broker_url = local_url(broker_settings.host, broker_settings.port)
        _say(f"  ✔ consent broker {broker_url}/openapi.json  (SQLite, migrated)")

        chat_settings = chat or LocalchatSettings()
        bot_settings, local = chat_target(bot or BotSettings(), chat_settings)
        if local:
            token = bot_settings.token.get_secret_value()
            chat_settings = chat_settings.model_copy(update={"bot_token": token})
            await _serve(
                create_localchat(chat_settings),
                chat_settings.host,
                chat_settings.port,
                runners,
                service="the local chat",
                setting="LOCALCHAT_PORT",
            )
            _say(f"  ✔ local chat     http://{chat_settings.host}:{chat_settings.port}/")
        client = await wiring.bot_client(
            folder,
            broker_url,
            wiring.admin_token(folder),
            bot_settings.events_url(),  # signed for this URL: the bot checks it is its own
        )
        bot_settings = bot_settings.model_copy(
            update={
                "broker_url": broker_url,
                "broker_credential": SecretStr(client["credential"]),
                "broker_webhook_secret": SecretStr(client["webhook_secret"]),
                "database_url": f"sqlite+aiosqlite:///{folder / 'bot.db'}",
            }
        )
        runtime = BotRuntime(bot_settings)
        try:
            await start_bot(runtime, api_setting=api_setting(bot_settings.api_base_url, local))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                host, port = bot_settings.host, bot_settings.port
                raise PortInUseError("the bot", host, port, "BOT_PORT") from e
            raise
        where = "local chat" if local else bot_settings.api_base_url.split("/bot")[0]
        _say(
            f"  ✔ bot            {bot_settings.mode} via {where}; events at {runtime.events_url()}"
        )
        _say(f"ready in {time.perf_counter() - started:.1f} s\n")
        if local:
            _say(f"Open the chat:  http://{chat_settings.host}:{chat_settings.port}/")
        _say(
            "Test customers (every bank): "
            + ", ".join(f"{username(i)} / {password(i)}" for i in (1, 2, 3))
        )
        for profile in BANKS:
            dashboard = f"{settings.base_url()}/banks/{profile.bank_id}/dashboard"
            _say(f"  {profile.name:<18} dashboard: {dashboard}")
        _say(
            f"Bank staff (agent console, /banks/<bank>/agent): agent1, agent2 / "
            f"{settings.staff_password}; e.g. {settings.base_url()}/banks/northwind/agent"
        )
        _say("A fraud alert on demand:  chatbank demo fraud --bank northwind --customer demo1")
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
    finally:
        _say("chatbank: shutting down …")
        if runtime is not None:
            await runtime.stop()
        for runner in reversed(runners):
            await runner.cleanup()
        _say("chatbank: stopped")
