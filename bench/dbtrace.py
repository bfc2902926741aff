"""Where the broker's database time goes, per activity (an event kind being ingested, the relay
claiming or recording, anything else): for the alert benchmark, in the broker process.

Each SQLite call the broker makes goes to aiosqlite's thread for its connection and back to
the event loop. For every such call this notes the time it waited for that thread (``queue``),
ran there (``sqlite``: the statement, including any wait in SQLite's busy handler for another
connection's write lock, and the sync on a commit) and waited for the event loop to take the
answer (``loop``); for every write transaction behind the broker's write gate, the time it
waited for the gate (``gate_wait``) and held it (``gate_hold``), and how many database calls it
made while holding it. Lines go to a file; :func:`report` summarises them."""

from __future__ import annotations

import contextlib
import contextvars
import statistics
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

ACTIVITY: contextvars.ContextVar[str] = contextvars.ContextVar("activity", default="other")
_CALLS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("calls", default=None)

SHORT = {
    "urn:chatbank:events:fraud-alert": "fraud-alert",
    "urn:uk:org:openbanking:events:resource-update": "resource-update",
    "urn:uk:org:openbanking:events:consent-authorization-revoked": "revoked",
    "urn:chatbank:events:transaction-changed": "transaction-changed",
    "urn:chatbank:events:support": "support",
}


def kind_of(claims: dict[str, Any]) -> str:
    events = claims.get("events")
    kinds = sorted(SHORT.get(str(k), str(k)) for k in events) if isinstance(events, dict) else []
    return "ingest " + ("+".join(kinds) or "?")


@contextlib.contextmanager
def activity(name: str) -> Any:
    token = ACTIVITY.set(name)
    try:
        yield
    finally:
        ACTIVITY.reset(token)


def install(path: Path) -> None:
    """Note every aiosqlite call and every write-gate transaction of this (broker) process in
    ``path``."""
    from consent.store.writes import WriteGate

    line = _writer(path)
    _trace_calls(line)
    _trace_gate(WriteGate, line)

    from consent.outbox.relay import Relay
    from consent.receipts.worker import ReceiptWorker
    from consent.service.broker import Broker

    _tagged(Broker, "credentials", "events: credentials")
    _tagged(Relay, "_claim", "relay claim")
    _tagged(Relay, "_record", "relay record")
    _tagged(ReceiptWorker, "_due", "receipt worker")
    _tagged(ReceiptWorker, "_account", "receipt worker")


def install_bot(path: Path) -> None:
    """The same for the bot in this process: its webhook's database calls and write gate."""
    from bot.events import BrokerEvents
    from bot.store.writes import WriteGate

    line = _writer(path)
    _trace_calls(line)
    _trace_gate(WriteGate, line)
    _tagged(BrokerEvents, "handle", "bot webhook")


Line = Callable[[str, str, float], None]


def _writer(path: Path) -> Line:
    out = path.open("a", buffering=1 << 16)

    def line(name: str, phase: str, ms: float) -> None:
        out.write(f"{name}\t{phase}\t{ms:.3f}\n")
        if phase == "gate_calls":
            out.flush()

    return line


def _trace_calls(line: Line) -> None:
    import asyncio
    from functools import partial

    import aiosqlite.core as core

    async def _execute(self: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        function = partial(fn, *args, **kwargs)
        stamps: list[float] = []

        def timed() -> Any:
            stamps.append(time.perf_counter())
            try:
                return function()
            finally:
                stamps.append(time.perf_counter())

        future = asyncio.get_event_loop().create_future()
        queued = time.perf_counter()
        self._tx.put_nowait((future, timed))
        try:
            return await future
        finally:
            if len(stamps) == 2:
                name = ACTIVITY.get()
                line(name, "queue", (stamps[0] - queued) * 1000)
                line(name, "sqlite", (stamps[1] - stamps[0]) * 1000)
                line(name, "loop", (time.perf_counter() - stamps[1]) * 1000)
            calls = _CALLS.get()
            if calls is not None:
                calls[0] += 1

    core.Connection._execute = _execute  # type: ignore[method-assign]


def _trace_gate(gate_class: Any, line: Line) -> None:
    gate = gate_class.__call__

    @contextlib.asynccontextmanager
    async def traced_gate(self: Any) -> AsyncIterator[None]:
        name = ACTIVITY.get()
        asked = time.perf_counter()
        async with gate(self):
            got = time.perf_counter()
            token = _CALLS.set([0])
            try:
                yield
            finally:
                calls = _CALLS.get()
                _CALLS.reset(token)
                line(name, "gate_wait", (got - asked) * 1000)
                line(name, "gate_hold", (time.perf_counter() - got) * 1000)
                line(name, "gate_calls", float(calls[0] if calls else 0))

    gate_class.__call__ = traced_gate


def _tagged(cls: Any, method: str, name: str) -> None:
    original = getattr(cls, method)

    async def wrapper(*a: Any, **kw: Any) -> Any:
        with activity(name):
            return await original(*a, **kw)

    setattr(cls, method, wrapper)


def report(path: Path) -> list[str]:
    """Per activity and phase: count, p50, p99, total (ms; calls for ``gate_calls``)."""
    if not path.exists():
        return ["  (no database trace)"]
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    for text in path.read_text().splitlines():
        name, phase, value = text.split("\t")
        samples[(name, phase)].append(float(value))
    lines = []
    for (name, phase), values in sorted(samples.items()):
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        lines.append(
            f"  {name:<30} {phase:<10} n={len(values):<6} p50 {statistics.median(values):8.2f}"
            f" · p99 {p99:8.2f} · max {ordered[-1]:8.2f} · sum {sum(values):9.1f}"
        )
    return lines
