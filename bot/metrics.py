"""The bot's own Prometheus metrics (no label holds a per-user value)."""

from __future__ import annotations

from prometheus_client import Counter

ALERTS_SHOWN = Counter(
    "chatbank_bot_messages_shown_total",
    "Alerts and notices from the broker that the Bot API accepted, by kind",
    ["kind"],
)
