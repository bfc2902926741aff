"""A flood of fraud alerts survives ``kill -9`` of the broker and of the bot: every alert is shown
once, none twice, and every consent stays whole.

The broker (``python -m consent``) and the bot (``python -m bot``) are real subprocesses; the
mock bank and localchat run in this process. The broker is killed at a random point of the
flood. The bot is killed at the worst point for it: while its ``sendMessage`` calls for alerts
are inside localchat (the deliveries claimed, the messages not yet accepted), so the broker's
retries after the restart must show those alerts rather than take them for duplicates. (A kill
after the Bot API accepted a message but before the bot recorded it would show it twice: the Bot
API has no idempotency key, so that window is at least once; see ``bot/store/deliveries.py``.
The relay posts up to 32 deliveries at once, so the test quiesces before the kill: see
``tests/system/quiesce.py``.)
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from bank_mock.app import create_app as create_bank
from bank_mock.keys import BANKS
from bank_mock.settings import BankSettings
from bot.store import repo
from bot.store.db import make_engine as bot_engine
from bot.store.db import session_factory as bot_sessions
from bot.store.db import upgrade as upgrade_bot
from bot.store.tables import ChatUser
from chatbank.scratch_db import scratch_databases
from consent.vault.keyring import generate_kek
from localchat.app import create_app as create_localchat
from localchat.keys import STORE
from localchat.settings import DemoUser
from localchat.settings import Settings as LocalchatSettings
from tests.consent.broker_env import free_port
from tests.system.quiesce import Quiesced, kill_bot_quiesced

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PG_ENV = "CHATBANK_TEST_POSTGRES_URL"
TOKEN = "4242:crash-test"
ADMIN = "crash-admin"
USERS = 5
ALERTS = 150
RATE = 25.0  # alerts a second
SHOP = "Crash Shop "


@dataclass
class Service:
    """A service as a subprocess that can be killed with SIGKILL and started again."""

    module: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    kills: int = 0

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", self.module], env=env, stdout=out, stderr=out, cwd=ROOT
            )

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


async def _until_up(http: aiohttp.ClientSession, url: str, service: Service) -> None:
    async with asyncio.timeout(30):
        while True:
            assert service.proc is not None and service.proc.poll() is None, service.log.read_text()
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


@pytest.fixture(params=["sqlite", "postgres"])
async def databases(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[str]]:
    """The broker's and the bot's database URLs (throwaway PostgreSQL databases if asked)."""
    if request.param == "sqlite":
        yield [
            f"sqlite+aiosqlite:///{tmp_path / 'consent.db'}",
            f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        ]
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (CI sets it); the PostgreSQL crash test is skipped")
    async with scratch_databases(base, 2, "chatbank_crash") as urls:
        yield urls


async def _link(
    http: aiohttp.ClientSession, broker: str, bank: str, auth: dict[str, str], username: str
) -> str:
    async with http.post(f"{broker}/v1/subjects", headers=auth) as resp:
        subject = str((await resp.json())["subject_id"])
    async with http.post(
        f"{broker}/v1/subjects/{subject}/consents",
        json={"bank_id": "northwind", "scopes": ["balances", "fraud_alerts", "card_controls"]},
        headers=auth,
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
    return subject


@pytest.mark.parametrize("batch_max", [1, 32], ids=["single", "batched"])
async def test_alerts_survive_kill_9_of_broker_and_bot_each_shown_exactly_once(
    databases: list[str], tmp_path: Path, batch_max: int
) -> None:
    """Once with one message per webhook POST, once with batches of up to 32 (the bot killed
    with a batch's sends held: the broker retries the whole batch)."""
    broker_db, bot_db = databases
    bank_port, broker_port, chat_port, bot_port = (free_port() for _ in range(4))
    bank_url, broker_url = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{broker_port}"
    chat_ids = [7000 + i for i in range(USERS)]
    bank_app = create_bank(
        BankSettings(
            port=bank_port,
            customers_per_bank=USERS,
            anchor_date=date(2026, 11, 20),
            event_retry_max=12,  # the broker is down for a moment: the bank keeps trying
            event_retry_base_s=0.2,
        )
    )
    chat_app = create_localchat(
        LocalchatSettings(
            port=chat_port,
            bot_token=TOKEN,
            users=[DemoUser(id=c, first_name=f"U{c}", language_code="en") for c in chat_ids],
        )
    )
    runners = [web.AppRunner(bank_app), web.AppRunner(chat_app)]
    for runner, port in zip(runners, (bank_port, chat_port), strict=True):
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    ring = f"1:{base64.b64encode(generate_kek()).decode()}"
    broker = Service(
        "consent",
        {
            "CONSENT_PORT": str(broker_port),
            "CONSENT_DATABASE_URL": broker_db,
            "CONSENT_BANK_DIRECTORY_URL": f"{bank_url}/banks",
            "CONSENT_KEYRING": ring,
            "CONSENT_ADMIN_TOKEN": ADMIN,
            "CONSENT_RELAY_IDLE_S": "0.2",
        },
        tmp_path / "broker.log",
    )
    bot = Service("bot", {}, tmp_path / "bot.log")
    store = chat_app[STORE]

    def shown() -> dict[str, int]:
        counts: dict[str, int] = {}
        for chat in chat_ids:
            for m in store.messages.get(chat, []):
                if m.from_bot and SHOP in m.text:
                    key = m.text.split(SHOP, 1)[1][:4]
                    counts[key] = counts.get(key, 0) + 1
        return counts

    async def shown_total() -> int:
        return sum(shown().values())

    def kill_bot() -> None:
        bot.kill()
        bot.start()

    killer: asyncio.Task[Quiesced] | None = None
    began = time.monotonic()
    try:
        async with aiohttp.ClientSession() as http:
            broker.start()
            await _until_up(http, f"{broker_url}/openapi.json", broker)
            async with http.post(
                f"{broker_url}/admin/v1/platform-clients",
                json={
                    "name": "bot",
                    "webhook_url": f"http://127.0.0.1:{bot_port}/broker/events",
                    "webhook_batch_max": batch_max,
                },
                headers={"Authorization": f"Bearer {ADMIN}"},
            ) as resp:
                client = await resp.json()
            auth = {"Authorization": f"Bearer {client['credential']}", "X-Purpose": "chat-service"}
            subjects = [
                await _link(http, broker_url, bank_url, auth, f"demo{i + 1}") for i in range(USERS)
            ]
            await asyncio.to_thread(upgrade_bot, bot_db)
            engine = bot_engine(bot_db)
            sessions = bot_sessions(engine)
            for chat_id, subject in zip(chat_ids, subjects, strict=True):
                user = ChatUser(
                    telegram_user_id=chat_id, chat_id=chat_id, subject_id=subject, language="en"
                )
                await repo.save_user(sessions, user)
            await engine.dispose()
            bot.env = {
                "BOT_TOKEN": TOKEN,
                "BOT_API_BASE_URL": f"http://127.0.0.1:{chat_port}/bot",
                "BOT_BROKER_URL": broker_url,
                "BOT_BROKER_CREDENTIAL": client["credential"],
                "BOT_BROKER_WEBHOOK_SECRET": client["webhook_secret"],
                "BOT_DATABASE_URL": bot_db,
                "BOT_PORT": str(bot_port),
                "BOT_POLL_TIMEOUT_S": "1",
                "BOT_MAX_MESSAGES_PER_S": "100",
                "BOT_DELIVERY_LEASE_S": "6",
            }
            bot.start()
            await _until_up(http, f"http://127.0.0.1:{bot_port}/healthz", bot)

            bank = bank_app[BANKS]["northwind"]
            accounts = [
                next(
                    a
                    for a in bank.customers_by_username[f"demo{i + 1}"].account_ids
                    if bank.accounts[a].card_ids
                )
                for i in range(USERS)
            ]
            started = time.monotonic()
            print(f"linked and started in {started - began:.1f} s")
            for k in range(ALERTS):
                await asyncio.sleep(max(0.0, started + k / RATE - time.monotonic()))
                if k == ALERTS // 3:
                    broker.kill()
                    broker.start()  # the bank retries its events meanwhile
                if k == 2 * ALERTS // 3:  # hold the sends, kill the bot once it is safe
                    chat_url = f"http://127.0.0.1:{chat_port}"
                    killer = asyncio.create_task(
                        kill_bot_quiesced(chat_url, bot_db, shown_total, kill_bot)
                    )
                async with http.post(
                    f"{bank_url}/sandbox/banks/northwind/transactions",
                    json={
                        "account_id": accounts[k % USERS],
                        "amount": "2750.00",
                        "currency": "EUR",
                        "merchant_name": f"{SHOP}{k:04d}",
                        "country": "FR",
                    },
                ) as resp:
                    assert resp.status == 201, await resp.text()
                    assert (await resp.json())["alerts"], "the fraud rules did not flag it"
            # the bot is killed with alert sends in flight inside localchat (bounds are generous
            # for a loaded machine; on a quiet one all is shown some 15 s after the flood began)
            assert killer is not None
            quiesced = await asyncio.wait_for(killer, 60)
            print(f"bot killed: {quiesced}")
            assert (broker.kills, bot.kills) == (1, 1)
            # its claims on them are left behind: the broker's retries must take them over
            assert quiesced.held >= 1 and quiesced.pending >= 1, quiesced

            await store.wait_until(lambda: len(shown()) >= ALERTS, 90)
            print(f"all shown {time.monotonic() - started:.1f} s after the flood began")
            await asyncio.sleep(1.0)  # a late duplicate would arrive now
            counts = shown()
            missing = sorted({f"{k:04d}" for k in range(ALERTS)} - set(counts))
            assert missing == [], f"never shown: {missing}"
            assert [k for k, n in counts.items() if n > 1] == []

            # no consent half-written: each one is authorized and reads its balances
            for subject in subjects:
                async with http.get(
                    f"{broker_url}/v1/subjects/{subject}/consents", headers=auth
                ) as resp:
                    consents = (await resp.json())["consents"]
                assert [c["status"] for c in consents] == ["authorized"]
                async with http.get(
                    f"{broker_url}/v1/subjects/{subject}/balances", headers=auth
                ) as resp:
                    assert resp.status == 200, await resp.text()
    finally:
        broker.stop()
        bot.stop()
        for runner in reversed(runners):
            await runner.cleanup()
