"""What ``BOT_ENV=production`` and ``CONSENT_ENV=production`` refuse: placeholder secrets and
public addresses a phone, a browser or Telegram cannot use."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.settings import BotSettings
from consent.settings import BrokerSettings

REAL_TOKEN = "123456:AAE-real-looking-token"
BROKER_OK: dict[str, str] = {
    "env": "production",
    "handle_secret": "h" * 32,
    "admin_token": "a" * 32,
}
BOT_OK: dict[str, str] = {
    "env": "production",
    "token": REAL_TOKEN,
    "broker_webhook_secret": "w" * 32,
    "mode": "webhook",
    "telegram_secret_token": "t" * 32,
}


def test_a_production_broker_with_an_https_public_url_is_accepted() -> None:
    settings = BrokerSettings.model_validate(
        {**BROKER_OK, "public_url": "https://consent.bank-chat.io"}
    )
    assert settings.base_url() == "https://consent.bank-chat.io"


@pytest.mark.parametrize(
    ("public_url", "says"),
    [
        ("", "CONSENT_PUBLIC_URL must be set"),
        ("http://consent.bank-chat.io", "https://"),
        ("https://127.0.0.1:8002", "points at this machine"),
        ("https://consent.example.com", "placeholder"),
        ("https://localhost:8002", "placeholder"),
    ],
)
def test_a_production_broker_refuses_a_public_url_browsers_cannot_use(
    public_url: str, says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        BrokerSettings.model_validate({**BROKER_OK, "public_url": public_url})


def test_a_production_broker_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError, match="CONSENT_ADMIN_TOKEN must be set"):
        BrokerSettings.model_validate(
            {**BROKER_OK, "admin_token": "change-me", "public_url": "https://c.io"}
        )


def test_a_production_bot_in_webhook_mode_with_an_https_public_url_is_accepted() -> None:
    settings = BotSettings.model_validate({**BOT_OK, "public_url": "https://bot.bank-chat.io"})
    assert settings.telegram_webhook_url() == "https://bot.bank-chat.io/telegram"


@pytest.mark.parametrize(
    ("public_url", "says"),
    [
        ("", "BOT_PUBLIC_URL must be set"),
        ("http://bot.bank-chat.io", "https://"),
        ("https://127.0.0.1:8004", "points at this machine"),
        ("https://bot.example", "placeholder"),
    ],
)
def test_a_production_bot_in_webhook_mode_refuses_what_telegram_cannot_call(
    public_url: str, says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        BotSettings.model_validate({**BOT_OK, "public_url": public_url})


def test_a_production_bot_refuses_the_local_token_and_a_missing_broker_secret() -> None:
    public = {**BOT_OK, "public_url": "https://bot.bank-chat.io"}
    with pytest.raises(ValidationError, match="BOT_TOKEN must be a real bot token"):
        BotSettings.model_validate({**public, "token": ""})
    with pytest.raises(ValidationError, match="BOT_BROKER_WEBHOOK_SECRET"):
        BotSettings.model_validate({**public, "broker_webhook_secret": ""})


def test_development_accepts_local_addresses() -> None:
    assert BrokerSettings().base_url() == "http://127.0.0.1:8002"
    bot = BotSettings(mode="webhook", telegram_secret_token="s", public_url="http://127.0.0.1:1")
    assert bot.telegram_webhook_url() == "http://127.0.0.1:1/telegram"
