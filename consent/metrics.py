"""The broker's own Prometheus metrics: bank calls per bank and outcome, breaker states, the
outbox (depth, oldest undelivered message), delivery retries and alerts delivered.

Bank calls are observed by each bank's client (:class:`consent.banks.client.BankClient` calls
:func:`bank_call_observer`'s function once per call, with the label values bound once), and the
fetches of a bank's keys by :class:`consent.events.verify.JwksCache` (attributed to the bank whose
directory URLs the key set's URL starts with). The broker's HTTP session carries no aiohttp
``TraceConfig``: one makes aiohttp build and send a dozen trace events per request, which cost
about a tenth of the broker's CPU on the balances read. Calls to anything else (the platform's
webhook) are not bank calls. Breaker states and the outbox are read when Prometheus scrapes. No
label holds a per-user value.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Metric
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import col, select

from consent.banks.client import BankClient
from consent.store.tables import OutboxRow

BANK_CALLS_DOC = (
    "Calls from the broker to a bank, by bank and outcome (ok, refused, error, timeout, "
    "unreachable)"
)
BANK_LATENCY_DOC = "Time a bank took to answer the broker, by bank"
BANK_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# the buckets' ``le`` labels as Prometheus writes them ("0.005" … "10.0", "+Inf")
_LE = (*(repr(float(b)) for b in BANK_LATENCY_BUCKETS), "+Inf")
ANSWERED = frozenset({"ok", "refused", "error"})  # outcomes where the bank answered


class _BankStats:
    """One bank's calls as plain numbers: counted on the event loop's thread (every bank call
    is made there), handed to Prometheus when it scrapes (:class:`BankCallCollector`). A
    ``Counter`` and a ``Histogram`` took a lock per update and walked the buckets in Python:
    about 2% of the broker's event loop on the balances read under load."""

    __slots__ = ("buckets", "calls", "seconds")

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.buckets = [0] * (len(BANK_LATENCY_BUCKETS) + 1)  # the last one: above every bound
        self.seconds = 0.0


_BANKS: dict[str, _BankStats] = {}


class BankCallCollector(Collector):
    """``chatbank_bank_calls_total{bank,outcome}`` and
    ``chatbank_bank_call_duration_seconds{bank}`` from the banks' :class:`_BankStats`."""

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "chatbank_bank_calls", BANK_CALLS_DOC, labels=["bank", "outcome"]
        )
        latency = HistogramMetricFamily(
            "chatbank_bank_call_duration_seconds", BANK_LATENCY_DOC, labels=["bank"]
        )
        for bank, stats in list(_BANKS.items()):
            for outcome, n in list(stats.calls.items()):
                calls.add_metric([bank, outcome], n)
            cumulative, buckets = 0, []
            for le, n in zip(_LE, stats.buckets, strict=True):
                cumulative += n
                buckets.append((le, cumulative))
            latency.add_metric([bank], buckets, stats.seconds)
        yield calls
        yield latency


REGISTRY.register(BankCallCollector())


BREAKER = Gauge(
    "chatbank_bank_breaker_state",
    "The broker's circuit breaker per bank in this process: 0 closed, 1 half-open, 2 open",
    ["bank"],
)
BREAKER_CODES = {"closed": 0, "half-open": 1, "open": 2}
OUTBOX_DEPTH = Gauge(
    "chatbank_outbox_depth", "Outbox messages not yet delivered to the platform (all processes)"
)
OUTBOX_OLDEST = Gauge(
    "chatbank_outbox_oldest_age_seconds",
    "Age of the oldest undelivered outbox message (0 when none)",
)
DELIVERY_RETRIES = Counter(
    "chatbank_delivery_retries_total",
    "Outbox deliveries to the platform that failed and were rescheduled (this process)",
)
DEAD_LETTERS = Counter(
    "chatbank_delivery_dead_letters_total",
    "Outbox deliveries given up for good (refused by the platform or too many attempts)",
)
OUTBOX_CLAIMS = Counter(
    "chatbank_outbox_claims_total",
    "The relay's claims of due outbox rows in this process, by whether they found any "
    "(found: rows or none; with several brokers, every commit wakes every relay)",
    ["found"],
)
ALERTS_DELIVERED = Counter(
    "chatbank_outbox_delivered_total",
    "Outbox messages (alerts and notices) the platform acknowledged (this process)",
)


def bank_call_observer(bank_id: str) -> Callable[[str, float], None]:
    """Count and time one bank's calls: ``observe(outcome, seconds)`` (on the event loop)."""
    stats = _BANKS.setdefault(bank_id, _BankStats())
    calls, buckets = stats.calls, stats.buckets

    def observe(outcome: str, seconds: float) -> None:
        calls[outcome] = calls.get(outcome, 0) + 1
        if outcome in ANSWERED:  # the bank answered
            buckets[bisect_left(BANK_LATENCY_BUCKETS, seconds)] += 1
            stats.seconds += seconds

    return observe


def url_call_observer(bank_of: Callable[[str], str | None]) -> Callable[[str, str, float], None]:
    """``observe(url, outcome, seconds)`` for calls made outside a bank's client (its key set),
    counted for the bank ``bank_of`` attributes the URL to, if any."""
    observers: dict[str, Callable[[str, float], None]] = {}

    def observe(url: str, outcome: str, seconds: float) -> None:
        bank = bank_of(url)
        if bank is not None:
            if bank not in observers:
                observers[bank] = bank_call_observer(bank)
            observers[bank](outcome, seconds)

    return observe


class BankUrls:
    """URL prefix → bank id, from the bank clients the broker has discovered."""

    def __init__(self, clients: Callable[[], list[BankClient]]) -> None:
        self._clients = clients
        self._prefixes: list[tuple[str, str]] = []
        self._known = -1

    def __call__(self, url: str) -> str | None:
        clients = self._clients()
        if len(clients) != self._known:
            self._known = len(clients)
            self._prefixes = sorted(
                (
                    (prefix.rstrip("/"), c.info.bank_id)
                    for c in clients
                    for prefix in (
                        c.info.aisp_base,
                        c.info.card_controls_base,
                        c.info.token_endpoint,
                        c.info.registration_endpoint,
                        c.info.jwks_uri,
                    )
                ),
                key=lambda p: -len(p[0]),
            )
        for prefix, bank_id in self._prefixes:
            if url.startswith(prefix):
                return bank_id
        return None


def refresher(
    clients: Callable[[], list[BankClient]],
    sessions: Any,
    clock: Callable[[], datetime],
) -> Callable[[], Awaitable[None]]:
    """Update the gauges read at scrape time: breakers, outbox depth and oldest age."""

    async def refresh() -> None:
        now = clock()
        for client in clients():
            BREAKER.labels(client.info.bank_id).set(BREAKER_CODES[client.breaker.state(now)])
        undelivered = col(OutboxRow.delivered_at).is_(None)
        async with sessions() as session:
            depth, oldest = (
                await session.exec(
                    select(func.count(), func.min(OutboxRow.created_at)).where(undelivered)
                )
            ).one()
        OUTBOX_DEPTH.set(depth)
        OUTBOX_OLDEST.set(0.0 if oldest is None else max(0.0, (now - oldest).total_seconds()))

    return refresh
