"""``chatbank up`` starts the services, says where they are, and stops cleanly."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from bank_mock.settings import BankSettings
from chatbank.cli import build_parser
from chatbank.run import run_up
from consent.settings import BrokerSettings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_up_serves_the_banks_prints_credentials_and_stops_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port, broker_port = _free_port(), _free_port()
    stop = asyncio.Event()
    bank = BankSettings(port=port, customers_per_bank=2)
    broker = BrokerSettings(port=broker_port)
    task = asyncio.create_task(run_up(tmp_path, bank=bank, broker=broker, stop=stop))
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
    stop.set()
    await asyncio.wait_for(task, 10)
    out = capsys.readouterr().out
    assert "✔ mock banks" in out
    assert "demo1 / pass-1" in out
    assert "chatbank: stopped" in out
    assert (tmp_path / "keys" / "banks" / "northwind.pem").exists()
    assert (tmp_path / "keys" / "consent-kek").exists()
    assert (tmp_path / "consent.db").exists()
    assert "✔ consent broker" in out


def test_the_command_line_knows_its_subcommands() -> None:
    parser = build_parser()
    assert parser.parse_args(["up", "--data-dir", "x"]).data_dir == "x"
    assert parser.parse_args(["bank"]).command == "bank"
    with pytest.raises(SystemExit):
        parser.parse_args(["nonsense"])


def test_db_upgrade_and_key_rotation_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatbank.cli import main

    monkeypatch.setenv("CONSENT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'consent.db'}")
    monkeypatch.setenv("CONSENT_KEYRING_FILE", str(tmp_path / "kek"))
    monkeypatch.chdir(tmp_path)  # no stray .env
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "consent.db").exists()
    assert main(["keys", "rotate"]) == 0
    out = capsys.readouterr().out
    assert "latest schema" in out
    assert "KEK version 2 is now current" in out
