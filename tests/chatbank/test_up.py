"""``chatbank up`` starts the services, says where they are, and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bank_mock.settings import BankSettings
from bot.settings import BotSettings
from chatbank.cli import build_parser
from chatbank.run import chat_target, run_up
from consent.settings import BrokerSettings
from localchat.settings import Settings as LocalchatSettings
from localchat.testing import ChatDriver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_up_serves_the_banks_prints_credentials_and_stops_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port, broker_port, chat_port, bot_port = (_free_port() for _ in range(4))
    stop = asyncio.Event()
    bank = BankSettings(port=port, customers_per_bank=2)
    broker = BrokerSettings(port=broker_port)
    bot = BotSettings(port=bot_port, poll_timeout_s=1)
    chat = LocalchatSettings(port=chat_port)
    task = asyncio.create_task(
        run_up(tmp_path, bank=bank, broker=broker, bot=bot, chat=chat, stop=stop)
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"http://127.0.0.1:{port}/banks") as resp:
                    banks = (await resp.json())["banks"]
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the banks never came up")
    assert {b["bank_id"] for b in banks} == {"northwind", "libertas", "wisla", "nakheel"}
    async with aiohttp.ClientSession() as session:
        for _ in range(400):  # the broker migrates its database before it listens
            try:
                async with session.get(f"http://127.0.0.1:{broker_port}/openapi.json") as resp:
                    assert resp.status == 200
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the broker never came up")
        printed = ""
        for _ in range(400):
            printed += capsys.readouterr().out
            if "ready in" in printed:
                break
            await asyncio.sleep(0.05)
    async with ChatDriver(f"http://127.0.0.1:{chat_port}") as chat_driver:
        await chat_driver.send(1001, "/start")
        messages = await chat_driver.wait_for(
            1001, lambda ms: any(m["from_bot"] for m in ms), timeout=10
        )
        assert "chatbank" in messages[-1]["text"]
    stop.set()
    await asyncio.wait_for(task, 10)
    out = printed + capsys.readouterr().out
    assert "✔ mock banks" in out
    assert "demo1 / pass-1" in out
    assert "chatbank: stopped" in out
    assert (tmp_path / "keys" / "banks" / "northwind.pem").exists()
    assert (tmp_path / "keys" / "consent-kek").exists()
    assert (tmp_path / "consent.db").exists()
    assert "✔ consent broker" in out
    assert "✔ local chat" in out and "✔ bot" in out
    assert (tmp_path / "bot.db").exists()
    client = json.loads((tmp_path / "keys" / "bot-client.json").read_text())
    assert client["webhook_url"] == f"http://127.0.0.1:{bot_port}/broker/events"
    assert oct((tmp_path / "keys" / "bot-client.json").stat().st_mode & 0o777) == "0o600"


def test_the_chat_target_follows_the_token_and_the_api_url() -> None:
    chat = LocalchatSettings(port=9999)
    local, start_local = chat_target(BotSettings(), chat)
    assert start_local and local.api_base_url == "http://127.0.0.1:9999/bot"
    real, start_local = chat_target(BotSettings(token="123:real-telegram-token"), chat)
    assert not start_local and real.api_base_url == "https://api.telegram.org/bot"
    other, start_local = chat_target(BotSettings(api_base_url="http://10.0.0.5:8081/bot"), chat)
    assert not start_local and other.api_base_url == "http://10.0.0.5:8081/bot"


def test_the_command_line_knows_its_subcommands() -> None:
    parser = build_parser()
    assert parser.parse_args(["up", "--data-dir", "x"]).data_dir == "x"
    assert parser.parse_args(["bank"]).command == "bank"
    assert parser.parse_args(["bot"]).command == "bot"
    assert parser.parse_args(["localchat"]).command == "localchat"
    fraud = parser.parse_args(["demo", "fraud", "--bank", "wisla", "--customer", "demo2"])
    assert (fraud.bank, fraud.customer, fraud.amount) == ("wisla", "demo2", "2750.00")
    with pytest.raises(SystemExit):
        parser.parse_args(["nonsense"])


def test_db_upgrade_and_key_rotation_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatbank.cli import main

    monkeypatch.setenv("CONSENT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'consent.db'}")
    monkeypatch.setenv("CONSENT_KEYRING_FILE", str(tmp_path / "kek"))
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    monkeypatch.chdir(tmp_path)  # no stray .env
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "consent.db").exists()
    assert main(["keys", "rotate"]) == 0
    out = capsys.readouterr().out
    assert "latest schema" in out
    assert "bot database is at the latest schema" in out
    assert "KEK version 2 is now current" in out


async def test_demo_fraud_says_clearly_what_is_wrong(aiohttp_server: Any) -> None:
    from bank_mock.app import create_app as create_bank
    from chatbank.demo import DemoError, inject_fraud

    with pytest.raises(DemoError, match="is `chatbank up` running"):
        await inject_fraud(f"http://127.0.0.1:{_free_port()}", "northwind", "demo1")
    server = await aiohttp_server(create_bank(BankSettings(customers_per_bank=2)))
    url = str(server.make_url("")).rstrip("/")
    with pytest.raises(DemoError, match="no customer 'demo9'"):
        await inject_fraud(url, "northwind", "demo9")
    answer = await inject_fraud(url, "northwind", "demo1")
    assert answer["alerts"]


def test_a_taken_port_is_a_clear_error_and_nothing_is_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatbank.cli import main

    bank_port, chat_port, bot_port = (_free_port() for _ in range(3))
    with socket.socket() as taken:  # say, a chatbank up already running
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker_port = taken.getsockname()[1]
        monkeypatch.setenv("BANK_PORT", str(bank_port))
        monkeypatch.setenv("CONSENT_PORT", str(broker_port))
        monkeypatch.setenv("LOCALCHAT_PORT", str(chat_port))
        monkeypatch.setenv("BOT_PORT", str(bot_port))
        monkeypatch.chdir(tmp_path)  # no stray .env
        assert main(["up", "--data-dir", str(tmp_path / "data")]) == 1
    captured = capsys.readouterr()
    assert f"the consent broker cannot listen on 127.0.0.1:{broker_port}" in captured.err
    assert "CONSENT_PORT" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert "chatbank: stopped" in captured.out
    with socket.socket() as again:  # the banks, started first, were shut down
        again.bind(("127.0.0.1", bank_port))


def test_one_service_on_a_taken_port_says_so_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatbank.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("BANK_PORT", str(taken.getsockname()[1]))
        monkeypatch.setenv("BANK_SIGNING_KEY_DIR", str(tmp_path / "keys"))
        monkeypatch.chdir(tmp_path)
        assert main(["bank"]) == 1
    err = capsys.readouterr().err
    assert "Is chatbank already running?" in err
    assert "Traceback" not in err
