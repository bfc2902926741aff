"""Settings of the local Bot API stand-in, from the environment (``LOCALCHAT_*``) or ``.env``."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DemoUser(BaseModel):
    """A person who chats with the bot from the web page or the test driver."""

    id: int
    first_name: str
    language_code: str


DEFAULT_USERS = [
    DemoUser(id=1001, first_name="Alice", language_code="en"),
    DemoUser(id=1002, first_name="Omar", language_code="ar"),
    DemoUser(id=1003, first_name="Zofia", language_code="pl"),
]


class Settings(BaseSettings):
    """Where localchat listens and which bot token it accepts."""

    model_config = SettingsConfigDict(env_prefix="LOCALCHAT_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8003
    bot_token: str = "123456:local-test-token"  # noqa: S105 - a local fake, not a secret
    bot_username: str = "chatbank_local_bot"
    users: list[DemoUser] = DEFAULT_USERS
    # flood control as Telegram's: sends and edits per chat and for the whole bot per second
    # (0 turns a limit off); generous defaults so only a runaway bot meets a 429
    flood_per_chat_per_s: int = Field(default=30, ge=0)
    flood_global_per_s: int = Field(default=1000, ge=0)
    # sends without allow_paid_broadcast for the whole bot per second (Telegram: about 30);
    # 0 leaves only flood_global_per_s (the default: a bot with paid broadcasts)
    flood_free_per_s: int = Field(default=0, ge=0)
    # a failed webhook delivery is kept and retried after this, doubling up to the maximum
    webhook_retry_s: float = Field(default=1.0, gt=0)
    webhook_max_retry_s: float = Field(default=60.0, gt=0)
