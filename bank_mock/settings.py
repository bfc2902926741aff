"""Settings of the mock-bank service, from the environment (prefix ``BANK_``) or ``.env``."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FaultSettings(BaseModel):
    """Fault injection for one bank (reliability tests of the broker)."""

    latency_ms: int = Field(default=0, ge=0, le=60_000)  # added to every API response
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)  # share of API calls answered 500
    timeout_rate: float = Field(default=0.0, ge=0.0, le=1.0)  # share of calls that hang
    timeout_s: float = Field(default=30.0, ge=0.0, le=600.0)  # how long a "hang" lasts


class BankSettings(BaseSettings):
    """One process serves every simulated bank, each under ``/banks/{bank_id}``."""

    model_config = SettingsConfigDict(
        env_prefix="BANK_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=0, le=65535)
    public_url: str = ""  # base URL as others reach it; defaults to http://host:port
    seed: int = 20261125  # the same seed always yields the same banks, people and transactions
    customers_per_bank: int = Field(default=5, ge=1, le=100_000)
    anchor_date: date | None = None  # histories end on this day (UTC); today if unset
    history_months: int = Field(default=13, ge=1, le=60)
    sandbox: bool = True  # sandbox endpoints (raw records, approve shortcut, inject); off in prod
    access_token_ttl_s: int = Field(default=300, ge=1)
    auth_code_ttl_s: int = Field(default=120, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    page_size: int = Field(default=100, ge=1, le=1000)  # transactions per page
    # how many accounts per bank keep their generated history in memory (LRU)
    ledger_cache_accounts: int = Field(default=100, ge=1)
    # folder of per-bank ES256 event-signing keys ({bank_id}.pem), created on first use;
    # empty: keys live in memory only
    signing_key_dir: str = ""
    # where clients, consents, tokens, card states and injected transactions are kept (SQLite),
    # so a restart changes nothing; empty: in memory only, forgotten on restart
    data_dir: str = ""
    event_retry_max: int = Field(default=6, ge=0)
    event_retry_base_s: float = Field(default=0.5, ge=0.0)
    # event deliveries on the wire at once to one receiver (event URL); the rest wait their turn.
    # A broker that group-commits events answers a whole batch at once, so the number in
    # flight is its batch size: 16 capped two brokers at about 230 events/s
    event_in_flight: int = Field(default=64, ge=1, le=1000)
    # the support chat's agent console: staff password (test credential, like the customers'),
    # business hours and days (ISO weekdays, 1 = Monday) in each bank's own time zone, and the
    # answer time promised when no agent is at the console during those hours
    staff_password: str = "agent-demo"  # noqa: S105 - a test credential
    support_hours: str = Field(default="09:00-17:00", pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    support_days: str = Field(default="1-5", pattern=r"^[1-7](-[1-7])?$")
    support_wait_minutes: int = Field(default=30, ge=1, le=24 * 60)
    support_chats_per_agent: int = Field(default=3, ge=1, le=100)  # then the agent is busy
    # book a demo card payment this often (seconds) on an account some app watches; 0: never
    demo_payments_every_s: float = Field(default=0.0, ge=0.0, le=3600.0)
    faults: dict[str, FaultSettings] = Field(default_factory=dict)  # bank_id -> faults

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
