"""What a newcomer with a moved port or a typo in ``.env`` meets: the local chat follows
``LOCALCHAT_PORT``, a service that is not there is one line naming it and the setting to check,
``chatbank demo fraud`` says whether anyone will see the alert, ``chatbank --version``."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import Any

import pytest

from bank_mock.settings import BankSettings
from bot.settings import BotSettings
from chatbank.cli import build_parser, fraud_outcome, main
from chatbank.reach import probe
from chatbank.run import chat_target
from localchat.settings import Settings as LocalchatSettings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_local_bot_api_follows_localchat_port() -> None:
    chat = LocalchatSettings(port=9003)
    bot, local = chat_target(BotSettings(), chat)
    assert local and bot.api_base_url == "http://127.0.0.1:9003/bot"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9003/bot", "http://localhost:9003/bot/", "http://[::1]:9003/bot"]
)
def test_a_bot_api_url_on_loopback_and_localchat_port_is_our_local_chat(url: str) -> None:
    bot, local = chat_target(BotSettings(api_base_url=url), LocalchatSettings(port=9003))
    assert local and bot.api_base_url == "http://127.0.0.1:9003/bot"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9004/bot", "http://10.0.0.5:9003/bot", "https://api.example/bot"]
)
def test_any_other_bot_api_url_is_someone_elses_server(url: str) -> None:
    bot, local = chat_target(BotSettings(api_base_url=url), LocalchatSettings(port=9003))
    assert not local and bot.api_base_url == url


def test_a_real_token_with_the_default_url_means_telegram_but_an_explicit_local_url_wins() -> None:
    chat = LocalchatSettings(port=9003)
    real = "123:real-telegram-token"
    bot, local = chat_target(BotSettings(token=real), chat)
    assert not local and bot.api_base_url == "https://api.telegram.org/bot"
    explicit = BotSettings(token=real, api_base_url="http://127.0.0.1:9003/bot")
    bot, local = chat_target(explicit, chat)
    assert local and bot.api_base_url == "http://127.0.0.1:9003/bot"


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_up_with_an_unreachable_bot_api_is_one_line_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nobody = f"http://127.0.0.1:{_free_port()}/bot"
    for name in ("BANK_PORT", "CONSENT_PORT", "LOCALCHAT_PORT", "BOT_PORT"):
        monkeypatch.setenv(name, str(_free_port()))
    monkeypatch.setenv("BOT_API_BASE_URL", nobody)
    monkeypatch.chdir(tmp_path)
    assert main(["up", "--data-dir", str(tmp_path / "data")]) == 1
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    port = nobody.split(":")[2].split("/")[0]
    assert line == (
        f"chatbank: the Bot API at {nobody} is not reachable; check BOT_API_BASE_URL in .env "
        f"(to move the built-in local chat, set LOCALCHAT_PORT={port} instead)"
    )
    assert "local chat" not in captured.out  # someone else's server: ours was not started
    assert "chatbank: stopped" in captured.out


def test_bot_alone_names_the_broker_and_the_bot_api_it_cannot_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = f"http://127.0.0.1:{_free_port()}"
    api = f"http://127.0.0.1:{_free_port()}/bot"
    monkeypatch.setenv("BOT_BROKER_URL", broker)
    monkeypatch.setenv("BOT_API_BASE_URL", api)
    monkeypatch.setenv("BOT_PORT", str(_free_port()))
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    monkeypatch.chdir(tmp_path)
    assert main(["bot"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines() == [
        f"chatbank bot: warning: the consent broker at {broker}/openapi.json is not reachable; "
        "check BOT_BROKER_URL in .env",
        f"chatbank: the Bot API at {api} is not reachable; check BOT_API_BASE_URL in .env",
    ]


async def test_a_probe_names_what_is_missing_and_is_quiet_when_something_answers(
    aiohttp_server: Any,
) -> None:
    from bank_mock.app import create_app as create_bank

    url = f"http://127.0.0.1:{_free_port()}/banks"
    problem = await probe("the bank directory", url, "CONSENT_BANK_DIRECTORY_URL")
    assert str(problem) == (
        f"the bank directory at {url} is not reachable; check CONSENT_BANK_DIRECTORY_URL in .env"
    )
    server = await aiohttp_server(create_bank(BankSettings(customers_per_bank=1)))
    answering = str(server.make_url("/banks"))
    assert await probe("the bank directory", answering, "CONSENT_BANK_DIRECTORY_URL") is None


def _args(**over: str) -> argparse.Namespace:
    return build_parser().parse_args(["demo", "fraud", *[f"--{k}={v}" for k, v in over.items()]])


def test_demo_fraud_says_nobody_will_see_an_alert_nobody_linked() -> None:
    out = fraud_outcome({"alerts": ["a1"], "notified_apps": []}, _args())
    assert "nobody will see it" in out and "demo1" in out and "/link" in out
    assert "on its way" not in out


def test_demo_fraud_names_who_was_told_when_someone_linked() -> None:
    out = fraud_outcome({"alerts": ["a1"], "notified_apps": ["chatbank broker"]}, _args())
    assert "went to chatbank broker" in out and "nobody" not in out


def test_demo_fraud_says_when_the_rules_did_not_flag_the_payment() -> None:
    out = fraud_outcome({"alerts": [], "notified_apps": []}, _args(amount="1.00"))
    assert "did not flag it" in out


async def test_the_bank_reports_which_apps_an_alert_went_to(aiohttp_server: Any) -> None:
    from bank_mock.app import create_app as create_bank
    from chatbank.demo import inject_fraud

    server = await aiohttp_server(create_bank(BankSettings(customers_per_bank=2)))
    answer = await inject_fraud(str(server.make_url("")).rstrip("/"), "northwind", "demo1")
    assert answer["alerts"] and answer["notified_apps"] == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("chatbank ") and out.split()[1][0].isdigit()


def test_an_unreachable_remote_bot_api_names_only_its_url_setting() -> None:
    from chatbank.run import api_setting

    assert api_setting("https://botapi.internal:8081/bot", local=False) == (
        "BOT_API_BASE_URL in .env"
    )
    assert "LOCALCHAT_PORT=9003" in api_setting("http://127.0.0.1:9003/bot", local=False)
    assert api_setting("http://127.0.0.1:8003/bot", local=True) == "BOT_API_BASE_URL in .env"


async def test_a_bot_api_that_refuses_the_token_names_bot_token(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    from bot.runtime import BotRuntime
    from chatbank.reach import UnreachableError, start_bot
    from localchat.app import create_app as create_localchat

    chat = await aiohttp_server(create_localchat(LocalchatSettings(bot_token="111:the-right-one")))
    api = str(chat.make_url("/bot"))
    settings = BotSettings(
        token="222:a-wrong-one",
        api_base_url=api,
        port=_free_port(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
    )
    runtime = BotRuntime(settings)
    try:
        with pytest.raises(UnreachableError) as caught:
            await start_bot(runtime)
    finally:
        await runtime.stop()
    assert str(caught.value) == (
        f"the Bot API at {api} refused the bot token; check BOT_TOKEN in .env"
    )
