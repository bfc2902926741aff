"""Settings of the bot, from the environment (prefix ``BOT_``) or ``.env``.

The Bot API base URL, the broker URL and the webhook settings all come from here, so the same
code runs against Telegram, against the local stand-in (``localchat``) and in tests.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ops.public_url import public_https_problem

TELEGRAM_API = "https://api.telegram.org/bot"
LOCAL_TOKEN = "4242:localchat-development-token"  # noqa: S105 - localchat only, refused in production


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOT_", env_file=".env", extra="ignore")

    env: str = "development"  # "production" refuses the local token and a missing secret
    token: SecretStr = SecretStr(LOCAL_TOKEN)
    api_base_url: str = "http://127.0.0.1:8003/bot"  # Telegram: https://api.telegram.org/bot
    broker_url: str = "http://127.0.0.1:8002"
    broker_credential: SecretStr = SecretStr("")  # "<client_id>.<secret>" from the broker admin
    broker_webhook_secret: SecretStr = SecretStr("")  # verifies the broker's signed deliveries
    # answers within 5 s, always: the broker is asked (X-Request-Deadline-Ms) to answer 0.3 s sooner
    broker_timeout_s: float = Field(default=4.0, gt=0, le=30)
    database_url: str = "sqlite+aiosqlite:///data/bot.db"
    mode: Literal["polling", "webhook"] = "polling"
    poll_timeout_s: int = Field(default=10, ge=0, le=50)  # getUpdates long-poll length
    host: str = "127.0.0.1"  # the bot's own HTTP server: broker events (+ Telegram webhook)
    port: int = Field(default=8004, ge=0, le=65535)
    public_url: str = ""  # how the broker and Telegram reach that server
    telegram_secret_token: SecretStr = SecretStr("")  # checked on every Telegram webhook call
    webhook_max_age_s: int = Field(default=300, ge=10)  # older signed deliveries are refused
    # A delivery being sent is claimed this long; a broker retry meanwhile is answered 503, after
    # it the claim is taken over (its holder died). Keep it above the broker's webhook timeout.
    delivery_lease_s: int = Field(default=30, ge=1, le=3600)
    default_language: Literal["en", "ar", "pl"] = "en"
    # an unfinished /link ends after this long without an answer (the user is told)
    link_timeout_s: float = Field(default=900.0, gt=0)
    # Telegram's documented broadcast limit is about 30 messages a second for a bot; bots with
    # paid broadcasts may send up to 1000. PTB's AIORateLimiter keeps the bot under this.
    max_messages_per_s: float = Field(default=30.0, gt=0, le=1000)

    @model_validator(mode="after")
    def _safe_outside_development(self) -> BotSettings:
        if not self.token.get_secret_value():
            self.token = SecretStr(LOCAL_TOKEN)  # an empty BOT_TOKEN= means the local chat
        if self.env != "development":
            if self.token.get_secret_value() == LOCAL_TOKEN:
                raise ValueError("BOT_TOKEN must be a real bot token outside development")
            if not self.broker_webhook_secret.get_secret_value():
                raise ValueError("BOT_BROKER_WEBHOOK_SECRET must be set outside development")
            if self.mode == "webhook":  # Telegram calls BOT_PUBLIC_URL; it only calls https
                problem = public_https_problem("BOT_PUBLIC_URL", self.public_url)
                if problem:
                    raise ValueError(problem)
        if self.mode == "webhook" and not self.telegram_secret_token.get_secret_value():
            raise ValueError("webhook mode needs BOT_TELEGRAM_SECRET_TOKEN")
        return self

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def events_url(self) -> str:
        """Where the broker delivers alerts and notices."""
        return f"{self.base_url()}/broker/events"

    def telegram_webhook_url(self) -> str:
        return f"{self.base_url()}/telegram"

    @property
    def broker_client_id(self) -> str:
        return self.broker_credential.get_secret_value().partition(".")[0]
