"""Settings of the consent broker, from the environment (prefix ``CONSENT_``) or ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ops.public_url import public_https_problem

PLACEHOLDER = "change-me"


class BrokerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSENT_", env_file=".env", extra="ignore")

    env: str = "development"  # "production" refuses placeholder secrets
    host: str = "127.0.0.1"
    port: int = Field(default=8002, ge=0, le=65535)
    public_url: str = ""  # how browsers reach the broker (bank redirects land here)
    database_url: str = "sqlite+aiosqlite:///data/consent.db"
    bank_directory_url: str = "http://127.0.0.1:8001/banks"
    keyring: SecretStr = SecretStr("")  # "1:<base64 32 bytes>,2:…"; or keyring_file
    keyring_file: str = "data/keys/consent-kek"
    handle_secret: SecretStr = SecretStr(PLACEHOLDER)  # HMAC key for opaque transaction ids
    admin_token: SecretStr = SecretStr(PLACEHOLDER)  # registers platform clients
    policy_dir: str = str(Path(__file__).with_name("policies"))
    bank_timeout_s: float = Field(default=5.0, gt=0, le=60)
    relay_idle_s: float = Field(default=1.0, gt=0, le=60)  # outbox retry poll when idle
    # a message failing this often (backoff doubling from 0.5 s up to 300 s) is a dead letter
    outbox_max_attempts: int = Field(default=15, ge=1, le=1000)
    # receipts: events this close together on one account become one fetch (and one message,
    # "3 payments at …"); a fetch the bank does not answer in time is retried with backoff
    receipt_bundle_s: float = Field(default=0.3, ge=0, le=10)
    receipt_fetch_timeout_s: float = Field(default=5.0, gt=0, le=60)
    receipt_idle_s: float = Field(default=1.0, gt=0, le=60)  # retries and quiet-hours ends
    sweep_interval_s: float = Field(default=60.0, gt=0)  # expiry, renewal notices, outbox purge
    # delivered outbox messages (alert payloads) are deleted this long after delivery
    outbox_retention_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    reads_per_minute: int = Field(default=30, ge=1)  # per subject: a human's pace, not a crawler's
    # per platform client, every /v1 request (refused ones too): a ceiling for a whole platform
    client_requests_per_minute: int = Field(default=60_000, ge=1)
    # SQLite: how far the access log is synced before a read is answered. "full" (the default):
    # every commit is synced to disk, so an answered read's entry survives a power cut. "normal":
    # it is written to the operating system, so it survives a crash of the broker's process, but
    # the last commits before a power cut or a kernel crash may be lost; it saves the disk's sync
    # time (0.2 to 20 ms on a shared disk) on every answer at low concurrency. On PostgreSQL the
    # server's synchronous_commit decides.
    audit_sync: Literal["full", "normal"] = "full"

    @model_validator(mode="after")
    def _no_placeholders_in_production(self) -> BrokerSettings:
        if self.env != "development":
            for name in ("handle_secret", "admin_token"):
                value: SecretStr = getattr(self, name)
                if value.get_secret_value() in ("", PLACEHOLDER):
                    raise ValueError(f"CONSENT_{name.upper()} must be set outside development")
            problem = public_https_problem("CONSENT_PUBLIC_URL", self.public_url)
            if problem:
                raise ValueError(problem)
        return self

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
