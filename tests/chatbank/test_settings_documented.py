"""Every setting of every service is listed in .env.example, so the docs match the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from bank_mock.settings import BankSettings
from bot.settings import BotSettings
from consent.settings import BrokerSettings
from localchat.settings import Settings as LocalchatSettings

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


@pytest.mark.parametrize(
    ("settings", "prefix", "skip"),
    [
        (BankSettings, "BANK_", {"faults"}),
        (BrokerSettings, "CONSENT_", set()),
        (BotSettings, "BOT_", set()),
        (LocalchatSettings, "LOCALCHAT_", {"bot_token", "bot_username", "users"}),
    ],
)
def test_every_setting_is_in_the_example_file(
    settings: type[BaseSettings], prefix: str, skip: set[str]
) -> None:
    lines = [line.removeprefix("# ") for line in EXAMPLE.read_text().splitlines()]
    listed = {line.split("=", 1)[0].strip() for line in lines if "=" in line}
    missing = [f"{prefix}{name.upper()}" for name in settings.model_fields if name not in skip]
    assert [m for m in missing if m not in listed] == []
