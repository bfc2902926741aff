"""Per-hop timing for the alert benchmark, collected from each process's own records.

Nothing is added to what travels between the services: each process notes, on its own wall
clock (one machine, one clock), when an alert passed one of its points, keyed by the alert's
merchant name ("Bench Shop 000123", unique per alert in the bench). The broker process writes
its notes to a file; the bot and localchat run in the bench process and note in memory.

    booked      the bench asks the bank to book the payment (the bank's event starts here)
    bank_event  the bank's fraud engine flagged it and its SET is signed and queued for delivery
                (cluster bench only, :func:`install_bank_trace`)
    bank_acked  the bank's delivery is over (answered, or given up: see the bank's log)
    broker_in   the broker starts verifying the bank's SET
    verified    the SET is verified
    committed   the alert, its outbox row and the de-duplication record are committed
    relay_post  the relay starts POSTing the outbox row to the bot's webhook (alone, or in a
                batch: then every row of the batch is noted at the batch's start)
    bot_show    the bot has verified and claimed the delivery and starts showing it
    sent        localchat's sendMessage stores the message (Telegram accepted it)
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import dbtrace

POINTS = (
    "booked",
    "bank_event",
    "bank_acked",
    "broker_in",
    "verified",
    "committed",
    "relay_post",
    "bot_show",
    "sent",
)
HOPS = (
    ("booked", "bank_event", "bank: book, fraud engine, SET signed, delivery queued"),
    ("bank_event", "broker_in", "bank delivery queued → broker starts verifying"),
    ("booked", "broker_in", "bank event → broker (fraud engine, SET signing, POST)"),
    ("broker_in", "verified", "broker: verify the SET"),
    ("verified", "committed", "broker: ingest → outbox commit"),
    ("committed", "relay_post", "outbox commit → relay picks it up"),
    ("relay_post", "bot_show", "relay → webhook → bot (verify, claim)"),
    ("bot_show", "sent", "bot → sendMessage accepted"),
    ("broker_in", "bank_acked", "broker_in → the bank has the broker's answer"),
    ("booked", "sent", "total"),
)
SHOP = "Bench Shop "

Notes = dict[str, dict[str, float]]  # key -> point -> wall time


def key_of(text: object) -> str | None:
    text = str(text)
    return text.split(SHOP, 1)[1][:6] if SHOP in text else None


Note = Callable[[str, str | None, float], None]  # (point, key, wall time)


def file_note(path: Path) -> Note:
    """A note-taker appending ``point<TAB>key<TAB>time`` lines to ``path`` (line-buffered)."""
    out = path.open("a", buffering=1)

    def note(point: str, key: str | None, at: float) -> None:
        if key is not None:
            out.write(f"{point}\t{key}\t{at!r}\n")

    return note


def install_broker_trace(note: Note) -> None:
    """Note ``broker_in``, ``verified``, ``committed`` and ``relay_post`` in this (broker)
    process."""
    import consent.api.events as events_api
    from consent.events.ingest import FRAUD_ALERT, ingest
    from consent.events.verify import verify_set as verify
    from consent.outbox.relay import Relay

    def merchant(claims: dict[str, Any]) -> str | None:
        event = claims.get("events", {}).get(FRAUD_ALERT) or {}
        return key_of((event.get("transaction") or {}).get("merchant_name"))

    post = Relay._post

    async def traced_verify(*a: Any, **kw: Any) -> dict[str, Any]:
        started = time.time()
        claims: dict[str, Any] = await verify(*a, **kw)
        key = merchant(claims)
        note("broker_in", key, started)
        note("verified", key, time.time())
        return claims

    async def traced_ingest(broker: Any, bank_id: str, claims: dict[str, Any]) -> str:
        with dbtrace.activity(dbtrace.kind_of(claims)):
            outcome: str = await ingest(broker, bank_id, claims)
        note("committed", merchant(claims), time.time())
        return outcome

    async def traced_post(self: Relay, target: Any, row: Any) -> str:
        if row.kind == "fraud_alert":
            note(
                "relay_post", key_of(json.loads(row.payload)["alert"].get("merchant")), time.time()
            )
        return await post(self, target, row)

    post_batch = Relay._post_batch

    async def traced_post_batch(self: Relay, target: Any, part: Any) -> dict[str, str]:
        at = time.time()
        for row, _ in part:
            if row.kind == "fraud_alert":
                note("relay_post", key_of(json.loads(row.payload)["alert"].get("merchant")), at)
        return await post_batch(self, target, part)

    setattr(events_api, "verify_set", traced_verify)  # noqa: B010 - patched for the trace
    setattr(events_api, "ingest", traced_ingest)  # noqa: B010
    Relay._post = traced_post  # type: ignore[method-assign]
    Relay._post_batch = traced_post_batch  # type: ignore[method-assign]


def install_bank_trace(note: Note) -> None:
    """Note ``bank_event`` and ``bank_acked`` in this (mock bank) process."""
    from bank_mock.fraud.publisher import FRAUD_ALERT, Publisher

    send, deliver = Publisher._send, Publisher._deliver
    current: list[str | None] = [None]

    def traced_send(
        self: Publisher, bank: Any, consent: Any, events: dict[str, Any], *a: Any, **kw: Any
    ) -> None:
        alert = events.get(FRAUD_ALERT)
        key = key_of((alert.get("transaction") or {}).get("merchant_name")) if alert else None
        current[0] = key
        try:
            send(self, bank, consent, events, *a, **kw)
        finally:
            current[0] = None
        note("bank_event", key, time.time())

    def traced_deliver(self: Publisher, url: str, token: str) -> Any:
        key = current[0]
        if key is None:
            return deliver(self, url, token)

        async def run() -> None:
            await deliver(self, url, token)
            note("bank_acked", key, time.time())

        return run()

    Publisher._send = traced_send  # type: ignore[method-assign]
    Publisher._deliver = traced_deliver  # type: ignore[method-assign]


def install_bot_trace(note: Note) -> Callable[[], None]:
    """Note ``bot_show`` in this (bot) process; returns the undo."""
    from bot.events import BrokerEvents

    show = BrokerEvents._show

    async def traced_show(self: BrokerEvents, message: dict[str, Any], *args: Any) -> Any:
        alert = (message.get("data") or {}).get("alert") or {}
        note("bot_show", key_of(alert.get("merchant")), time.time())
        return await show(self, message, *args)

    BrokerEvents._show = traced_show  # type: ignore[method-assign,assignment]

    def undo() -> None:
        BrokerEvents._show = show  # type: ignore[method-assign]

    return undo


def install_chat_trace(note: Note) -> Callable[[], None]:
    """Note ``sent`` when localchat (in this process) stores a bot's message; returns the
    undo."""
    from localchat import store as chat_store

    add = chat_store.Store.add_message

    def traced_add(
        self: Any, chat_id: int, text: str, *, from_bot: bool, sender_id: int | None = None
    ) -> Any:
        if from_bot:
            note("sent", key_of(text), time.time())
        return add(self, chat_id, text, from_bot=from_bot, sender_id=sender_id)

    chat_store.Store.add_message = traced_add  # type: ignore[method-assign]

    def undo() -> None:
        chat_store.Store.add_message = add  # type: ignore[method-assign]

    return undo


def memory_note(notes: Notes) -> Note:
    """A note-taker keeping the first time of each point in ``notes``."""

    def note(point: str, key: str | None, at: float) -> None:
        if key is not None:
            notes.setdefault(key, {}).setdefault(point, at)

    return note


def serve_traced_broker(trace: str, *args: Any) -> None:
    """:func:`bench.services.serve_broker`, noting each alert's points in ``trace`` (a file)."""
    install_broker_trace(file_note(Path(trace)))
    dbtrace.install(Path(trace).with_suffix(".db.tsv"))
    from bench.services import serve_broker

    serve_broker(*args)


def trace_bot(notes: Notes) -> Callable[[], None]:
    """Note ``bot_show`` and ``sent`` in this process; returns the undo."""
    note = memory_note(notes)
    undo_bot, undo_chat = install_bot_trace(note), install_chat_trace(note)

    def undo() -> None:
        undo_bot()
        undo_chat()

    return undo


def read_trace(path: Path, notes: Notes) -> None:
    """Merge the notes in ``path`` (a file, or a folder of them) into ``notes``: the first of
    each point (a retry keeps the first try)."""
    files = sorted(path.glob("*.tsv")) if path.is_dir() else [path] if path.exists() else []
    for file in files:
        for line in file.read_text().splitlines():
            point, key, at = line.split("\t")
            points = notes.setdefault(key, {})
            points[point] = min(points.get(point, float(at)), float(at))


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds a process has used (this one if ``pid`` is None): a measure
    that a busy shared machine disturbs far less than latency."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds of the PostgreSQL server on this machine (its live processes, and the ended
    backends its postmaster has reaped); 0 when none runs here."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, fields = text.split("(", 1)[1].rsplit(")", 1)[0], text.rsplit(")", 1)[1].split()
        if name != "postgres":
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
        if _comm(fields[1]) != "postgres":  # the postmaster: its reaped backends too
            total += (int(fields[13]) + int(fields[14])) / tick
    return total


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(notes: Notes) -> list[str]:
    """p50 / p99 / max per hop, in milliseconds, over alerts that have both ends."""
    lines = []
    for start, end, name in HOPS:
        spans = [(n[end] - n[start]) * 1000 for n in notes.values() if start in n and end in n]
        if not spans:
            lines.append(f"  {name:<58} (no samples)")
            continue
        lines.append(
            f"  {name:<58} p50 {statistics.median(spans):7.1f} · "
            f"p99 {percentile(spans, 99):7.1f} · max {max(spans):7.1f} ms  (n={len(spans)})"
        )
    return lines
