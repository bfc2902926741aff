"""Every service reads ``.env``; the test suite never does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bank_mock.settings import BankSettings
from bot.settings import BotSettings
from consent.settings import BrokerSettings
from localchat.settings import Settings as LocalchatSettings
from tests.conftest import settings_classes

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = """\
BANK_PORT=1111
CONSENT_PORT=2222
LOCALCHAT_PORT=3333
BOT_PORT=4444
BOT_MODE=webhook
BOT_API_BASE_URL=http://10.9.9.9:1/bot
"""


def test_a_developers_dotenv_never_reaches_the_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(HOSTILE)
    monkeypatch.chdir(tmp_path)
    assert BankSettings().port == 8001
    assert BrokerSettings().port == 8002
    assert LocalchatSettings().port == 8003
    bot = BotSettings()
    assert (bot.port, bot.mode) == (8004, "polling")
    assert bot.api_base_url == "http://127.0.0.1:8003/bot"
    assert {cls.__name__ for cls in settings_classes()} >= {
        "BankSettings",
        "BrokerSettings",
        "BotSettings",
        "Settings",
    }
    assert [cls for cls in settings_classes() if cls.model_config.get("env_file")] == []


def test_every_service_reads_dotenv_when_it_runs(tmp_path: Path) -> None:
    """Outside the test suite (a fresh interpreter in a folder with a ``.env``), all four
    services take their settings from it: localchat too."""
    (tmp_path / ".env").write_text(HOSTILE.replace("BOT_MODE=webhook\n", ""))
    code = (
        "from bank_mock.settings import BankSettings\n"
        "from consent.settings import BrokerSettings\n"
        "from bot.settings import BotSettings\n"
        "from localchat.settings import Settings\n"
        "print(BankSettings().port, BrokerSettings().port, Settings().port, BotSettings().port)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BANK_", "CONSENT_", "BOT_"))}
    env = {k: v for k, v in env.items() if not k.startswith("LOCALCHAT_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(  # noqa: S603 - our own interpreter on a fixed snippet
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.split() == ["1111", "2222", "3333", "4444"]
