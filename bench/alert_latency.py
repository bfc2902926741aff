"""Fraud-alert latency from the bank's event to the Bot API ``sendMessage``: suspicious card
payments are booked at the mock bank at a steady rate; each one's alert travels bank (signed
SET) → broker (verify, minimize, outbox, relay, signed webhook) → bot (verify, de-duplicate)
→ localchat's ``sendMessage``. Prints p50/p95/p99/max, the same per hop (bank event → broker
ingest → outbox commit → relay → webhook → bot → ``sendMessage``, see :mod:`bench.hops`), and
how many alerts were lost.

Target: p99 under 250 ms at 50 alerts a second for 30 seconds, none lost.

    python -m bench.alert_latency [--rate 50] [--seconds 30] [--users 100]
    python -m bench.alert_latency --postgres postgresql://postgres@127.0.0.1:5432/postgres \
        --brokers 2 --bots 2 --rate 200 [--seconds 30] [--users 400]

With ``--postgres`` the brokers and the bots run as separate processes on throwaway databases on
that server, behind round-robin proxies (see :func:`main_cluster` for the Telegram limits it
assumes).

The bank and the broker run in their own processes (as in production, on this 2-core
machine); the bot and localchat share this one, which also books the payments and notes when
each alert reaches ``sendMessage``. Telegram's limits as assumed here (:data:`TELEGRAM_LIMITS`,
printed with the figures): about 1 message a second per chat, so the stream is spread over
``--users`` chats (default twice the rate: one alert per chat every two seconds); and for the
whole bot about 30 messages a second for free, up to 1000 a second for messages sent with
``allow_paid_broadcast`` (paid in Stars). 50/s and 200/s are above 30/s, so the bench's bot is a
paid-broadcast bot: ``BOT_MAX_MESSAGES_PER_S`` is 1000 (split between the bot processes), which
makes its pushes carry ``allow_paid_broadcast``; localchat enforces it (``flood_free_per_s=30``:
an unpaid send beyond 30 in the bot's last second gets a 429, as would a paid one beyond 1000).
localchat's per-chat window stays at its lenient 30/s: a strict 1/s window would turn delivery
jitter into 429s, and PTB's AIORateLimiter pauses the whole bot on any 429.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench import cluster_alerts, dbtrace, hops
from bench.bank_transactions import _free_port, _wait_up
from bench.services import link, platform_bot, serve_bank
from chatbank.haproxy import haproxy_path, logged_errors

TOKEN = "4242:alert-latency"
BOT_RATE = 1000.0  # paid broadcasts: Telegram's ceiling for one bot token
BATCH_TICK_S = 0.02  # the 2+2 bench sends the payments due every 20 ms in one request
ALERT_SCOPES = ["fraud_alerts", "card_controls"]
RELAY = {"relay_idle_s": 0.5}  # the outbox relay polls more often than its default
TELEGRAM_LIMITS = (
    "Telegram limits assumed: ~1 msg/s per chat (offered here: {per_chat:.2f}/s per chat over "
    "{users} chats); ~30 msg/s per bot free, up to 1000/s with allow_paid_broadcast: this is a "
    "paid-broadcast bot (BOT_MAX_MESSAGES_PER_S {per_bot:g} per bot process; localchat 429s "
    "unpaid sends above 30/s and any above 1000/s)"
)


percentile = hops.percentile


async def main(rate: float, seconds: float, users: int, warm_bank: bool = False) -> int:
    from bot.runtime import BotRuntime
    from bot.store import repo
    from bot.store.db import make_engine, session_factory
    from bot.store.tables import ChatUser
    from consent.vault.keyring import generate_kek
    from localchat.app import create_app as create_localchat
    from localchat.settings import DemoUser
    from localchat.settings import Settings as LocalchatSettings

    notes: hops.Notes = {}
    hops.trace_bot(notes)

    ctx = mp.get_context("spawn")
    folder = Path(tempfile.mkdtemp(prefix="chatbank-alerts-"))
    dbtrace.install_bot(folder / "bot.db.tsv")
    trace = folder / "broker-trace.tsv"
    bank_port, broker_port, chat_port, bot_port = (_free_port() for _ in range(4))
    ring = f"1:{base64.b64encode(generate_kek()).decode()}"
    procs = [
        ctx.Process(target=serve_bank, args=(bank_port, users), daemon=True),
        ctx.Process(
            target=hops.serve_traced_broker,
            args=(
                str(trace),
                broker_port,
                bank_port,
                f"sqlite+aiosqlite:///{folder / 'consent.db'}",
                ring,
                RELAY,
            ),
            daemon=True,
        ),
    ]
    for p in procs:
        p.start()
    bank, broker = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{broker_port}"
    chat_ids = [5000 + i for i in range(users)]
    chat_settings = LocalchatSettings(
        port=chat_port,
        bot_token=TOKEN,
        users=[DemoUser(id=c, first_name=f"U{c}", language_code="en") for c in chat_ids],
        flood_global_per_s=1000,
        flood_free_per_s=30,
    )
    runner = web.AppRunner(create_localchat(chat_settings), access_log=None)
    runtime: BotRuntime | None = None
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", chat_port).start()
        await _wait_up(f"{bank}/banks")
        await _wait_up(f"{broker}/openapi.json")
        async with aiohttp.ClientSession() as http:
            auth, runtime = await platform_bot(
                http,
                broker,
                chat_port=chat_port,
                bot_port=bot_port,
                database_url=f"sqlite+aiosqlite:///{folder / 'bot.db'}",
                token=TOKEN,
                max_messages_per_s=BOT_RATE,
            )
            engine = make_engine(runtime.settings.database_url)
            sessions = session_factory(engine)
            accounts: list[str] = []
            async with http.get(f"{bank}/sandbox/banks/northwind/customers") as resp:
                customers = {c["username"]: c for c in (await resp.json())["customers"]}
            print(f"linking {users} users …", flush=True)
            for i, chat_id in enumerate(chat_ids):
                async with http.post(f"{broker}/v1/subjects", headers=auth) as resp:
                    subject = (await resp.json())["subject_id"]
                username = f"demo{i + 1}"
                await link(http, broker, bank, auth, subject, ALERT_SCOPES, username)
                await repo.save_user(
                    sessions,
                    ChatUser(
                        telegram_user_id=chat_id, chat_id=chat_id, subject_id=subject, language="en"
                    ),
                )
                card = next(a for a in customers[username]["accounts"] if a["card_ids"])
                accounts.append(card["account_id"])
            await engine.dispose()
            if warm_bank:  # the mock bank builds an account's 90-day history on its first use
                await cluster_alerts.warm_bank(http, bank, accounts)

            total = int(rate * seconds)
            sent: dict[str, float] = {}
            cpu_before = [hops.cpu_seconds(procs[0].pid), hops.cpu_seconds(procs[1].pid)]
            cpu_before.append(hops.cpu_seconds())
            failures = 0
            print(
                f"booking {total} suspicious payments at {rate:g}/s for {seconds:g} s …", flush=True
            )

            async def book(k: int) -> None:
                nonlocal failures
                key = f"{k:06d}"
                body = {
                    "account_id": accounts[k % users],
                    "amount": "2750.00",
                    "currency": "EUR",
                    "merchant_name": f"Bench Shop {key}",
                    "country": "FR",
                }
                sent[key] = time.perf_counter()
                notes.setdefault(key, {})["booked"] = time.time()
                async with http.post(
                    f"{bank}/sandbox/banks/northwind/transactions", json=body
                ) as resp:
                    answer = await resp.json()
                    if resp.status >= 400 or not answer.get("alerts"):
                        failures += 1
                        sent.pop(key, None)

            started = time.perf_counter()
            tasks = []
            for k in range(total):
                delay = started + k / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(book(k)))
            await asyncio.gather(*tasks)
            booked_in = time.perf_counter() - started
            deadline = time.perf_counter() + 15
            while time.perf_counter() < deadline and not all(  # noqa: ASYNC110
                "sent" in notes.get(k, {}) for k in sent
            ):
                await asyncio.sleep(0.1)
        cpu = {
            "bank": hops.cpu_seconds(procs[0].pid) - cpu_before[0],
            "broker": hops.cpu_seconds(procs[1].pid) - cpu_before[1],
            "bot + localchat + the bench": hops.cpu_seconds() - cpu_before[2],
        }
    finally:
        if runtime is not None:
            await runtime.stop()
        await runner.cleanup()
        for p in procs:
            p.terminate()
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
    hops.read_trace(trace, notes)
    latencies = [
        (notes[k]["sent"] - notes[k]["booked"]) * 1000 for k in sent if "sent" in notes.get(k, {})
    ]
    lost = len(sent) - len(latencies)
    print(
        f"\nbooked {len(sent)} flagged payments in {booked_in:.1f} s "
        f"({len(sent) / booked_in:.1f}/s); {failures} not flagged or refused by the bank"
    )
    if latencies:
        print(
            f"bank event → sendMessage: p50 {statistics.median(latencies):.1f} ms · "
            f"p95 {percentile(latencies, 95):.1f} ms · p99 {percentile(latencies, 99):.1f} ms · "
            f"max {max(latencies):.1f} ms"
        )
    print(TELEGRAM_LIMITS.format(per_chat=rate / users, users=users, per_bot=BOT_RATE))
    print(
        "CPU per alert (a busy machine disturbs it less than latency): "
        + " · ".join(f"{name} {1000 * s / max(1, len(sent)):.2f} ms" for name, s in cpu.items())
    )
    print("per hop (each process's own clock notes; see bench.hops):")
    print("\n".join(hops.report({k: notes[k] for k in sent if k in notes})))
    slow = [int(k) / rate for k in sent if (notes[k].get("sent", 1e18) - notes[k]["booked"]) > 0.25]
    print(
        "alerts over 250 ms by when they were booked (5 s windows): "
        + " · ".join(
            f"{w * 5}-{w * 5 + 5} s: {sum(1 for t in slow if int(t // 5) == w)}"
            for w in range(int(seconds // 5) + 1)
        )
    )
    print("broker database calls and write-gate transactions by activity (bench.dbtrace):")
    print("\n".join(dbtrace.report(trace.with_suffix(".db.tsv"))))
    print("\n".join(dbtrace.report(folder / "bot.db.tsv")))
    print(f"lost: {lost} (target 0) · p99 target < 250 ms")
    ok = lost == 0 and bool(latencies) and percentile(latencies, 99) < 250
    return 0 if ok else 1


async def main_cluster(
    postgres: str,
    brokers: int,
    bots: int,
    rate: float,
    seconds: float,
    users: int,
    warm_bank: bool = True,
    proxy: str = "python",
) -> int:
    """The same flood through ``brokers`` broker and ``bots`` bot processes on PostgreSQL, each
    group behind a round-robin proxy (:class:`chatbank.cluster.Cluster`); localchat runs here
    and notes when each alert reaches ``sendMessage``.

    Telegram's limits as in the module's docstring: the bot token's paid-broadcast 1000/s is
    split between the bot processes (``BOT_MAX_MESSAGES_PER_S``); the alerts go round-robin over
    ``users`` chats. The mock bank keeps every flooded account's history cached."""

    from bench.cluster_alerts import book_alerts, chat_ids, link_users
    from bench.traced import SERVICE, TRACE_DIR
    from chatbank.cluster import Cluster, ClusterConfig, free_port
    from chatbank.scratch_db import create_databases, drop_databases
    from localchat.app import create_app as create_localchat
    from localchat.settings import DemoUser
    from localchat.settings import Settings as LocalchatSettings

    notes: hops.Notes = {}
    undo = hops.install_chat_trace(hops.memory_note(notes))
    proxy_log = _Counting()
    logging.getLogger("chatbank.proxy").addHandler(proxy_log)
    urls = await create_databases(postgres, 2, "chatbank_bench")
    chat_port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="chatbank-cluster-"))
    traces = folder / "traces"
    traces.mkdir()
    trace_env = {TRACE_DIR: str(traces)}
    config = ClusterConfig(
        broker_database_url=urls[0],
        bot_database_url=urls[1],
        folder=folder,
        brokers=brokers,
        bots=bots,
        broker_port=free_port(),
        bot_port=free_port(),
        bank_port=free_port(),
        chat_port=chat_port,
        bot_token=TOKEN,
        start_chat=False,
        bank_env={
            "BANK_CUSTOMERS_PER_BANK": str(users),
            "BANK_ACCESS_TOKEN_TTL_S": "3600",
            # every flooded account's history stays cached: with the default 100 and a
            # round-robin over more accounts, each payment would rebuild its account's 90-day
            # history (an artefact of the mock bank's LRU, not of the alert path)
            "BANK_LEDGER_CACHE_ACCOUNTS": str(max(100, 2 * users)),
            SERVICE: "bank",
            **trace_env,
        },
        broker_env={
            "CONSENT_RELAY_IDLE_S": "0.5",
            "CONSENT_READS_PER_MINUTE": "100000",
            SERVICE: "consent",
            **trace_env,
        },
        bot_env={"BOT_MAX_MESSAGES_PER_S": f"{BOT_RATE / bots:g}", SERVICE: "bot", **trace_env},
        broker_module="bench.traced",
        bot_module="bench.traced",
        bank_module="bench.traced",
        proxy=proxy,
    )
    chat_settings = LocalchatSettings(
        port=chat_port,
        bot_token=TOKEN,
        users=[DemoUser(id=c, first_name=f"U{c}", language_code="en") for c in chat_ids(users)],
        flood_global_per_s=1000,
        flood_free_per_s=30,
    )
    runner = web.AppRunner(create_localchat(chat_settings), access_log=None)
    cluster = Cluster(config)
    booked: dict[str, float] = {}
    booked_in = 0.0
    cpu_used: dict[str, float] = {}
    cpu_span = 0.0
    proxy_seen: Counter[str] = Counter()
    claims: Counter[str] = Counter()
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", chat_port).start()
        await cluster.start()
        print(f"linking {users} users through {brokers} brokers …", flush=True)
        accounts = await link_users(cluster, users, warm=warm_bank)
        total = int(rate * seconds)
        print(f"booking {total} suspicious payments at {rate:g}/s for {seconds:g} s …", flush=True)
        groups: dict[str, list[Any]] = {
            "bank": [cluster.bank],
            "brokers": cluster.brokers,
            "bots": cluster.bots,
        }

        def cpu() -> dict[str, float]:
            used: dict[str, float] = {
                name: sum((hops.cpu_seconds(p.popen.pid) for p in procs if p and p.popen), 0.0)
                for name, procs in groups.items()
            }
            if cluster.haproxies:
                used["haproxy"] = sum(
                    hops.cpu_seconds(h.popen.pid) for h in cluster.haproxies if h.popen
                )
                used["localchat + the bench"] = hops.cpu_seconds()
            else:
                used["localchat + proxies + the bench"] = hops.cpu_seconds()
            used["postgres"] = hops.postgres_cpu_seconds()
            return used

        cpu_before, cpu_since = cpu(), time.perf_counter()
        flood = await book_alerts(cluster.bank_url, accounts, total, rate, tick_s=BATCH_TICK_S)
        booked, booked_in = flood.booked, flood.seconds
        for key, at in booked.items():
            notes.setdefault(key, {})["booked"] = at
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline and not all(  # noqa: ASYNC110
            "sent" in notes.get(k, {}) for k in booked
        ):
            await asyncio.sleep(0.1)
        cpu_used = {name: s - cpu_before[name] for name, s in cpu().items()}
        cpu_span = time.perf_counter() - cpu_since
        # counted up to here: stopping the cluster (bots before brokers) makes the relays'
        # last attempts fail at the proxy, which is shutdown, not the run
        proxy_seen = Counter(proxy_log.seen)
        claims = await relay_claims([p.url for p in cluster.brokers])
        for h in cluster.haproxies:  # it logs only what went wrong (chatbank.haproxy)
            proxy_seen.update(logged_errors(h.log.read_text(errors="replace")))
    finally:
        await cluster.stop()
        await runner.cleanup()
        undo()
        await drop_databases(postgres, urls)
    hops.read_trace(traces, notes)
    latencies = [
        (notes[k]["sent"] - notes[k]["booked"]) * 1000 for k in booked if "sent" in notes.get(k, {})
    ]
    lost = len(booked) - len(latencies)
    print(
        f"\n{brokers} brokers + {bots} bots on PostgreSQL: booked {len(booked)} flagged payments "
        f"in {booked_in:.1f} s ({len(booked) / max(booked_in, 1e-9):.1f}/s) to {users} chats"
    )
    print(TELEGRAM_LIMITS.format(per_chat=rate / users, users=users, per_bot=BOT_RATE / bots))
    print(
        f"payments sent to the bank in batches every {BATCH_TICK_S * 1000:g} ms "
        "(POST /sandbox/banks/northwind/transactions/batch); each alert's clock starts then"
    )
    cores = sum(cpu_used.values()) / max(cpu_span, 1e-9)
    print(
        f"CPU seconds used ({len(latencies)} alerts shown of {len(booked)} booked): "
        + " · ".join(f"{name} {s:.1f} s" for name, s in cpu_used.items())
        + f" (on average {cores:.2f} of {os.cpu_count()} cores over {cpu_span:.0f} s)"
    )
    if latencies:
        print(
            f"bank event → sendMessage: p50 {statistics.median(latencies):.1f} ms · "
            f"p95 {percentile(latencies, 95):.1f} ms · p99 {percentile(latencies, 99):.1f} ms · "
            f"max {max(latencies):.1f} ms"
        )
    print("per hop (each process's own clock notes; see bench.hops):")
    print("\n".join(hops.report({k: notes[k] for k in booked if k in notes})))
    logs = folder / "logs"
    print(
        "bank deliveries retried: "
        + str(_count(logs / "bank.log", "event delivery to"))
        + " · given up: "
        + str(_count(logs / "bank.log", "gave up delivering"))
        + (" · haproxy errors: " if proxy == "haproxy" else " · proxy 'failed mid-request': ")
        + (" · ".join(f"{n} {why}" for why, n in proxy_seen.items()) or "0")
    )
    print(
        f"relay claims (all brokers, link phase included): {claims['rows']} found rows, "
        f"{claims['none']} found none"
    )
    print(f"lost: {lost} (target 0) · p99 target < 250 ms")
    ok = lost == 0 and bool(latencies) and percentile(latencies, 99) < 250
    return 0 if ok else 1


async def relay_claims(brokers: list[str]) -> Counter[str]:
    """The brokers' ``chatbank_outbox_claims_total`` by ``found``, summed (their /metrics)."""
    total: Counter[str] = Counter()
    async with aiohttp.ClientSession() as http:
        for url in brokers:
            async with http.get(f"{url}/metrics") as resp:
                text = await resp.text()
            for line in text.splitlines():
                if line.startswith("chatbank_outbox_claims_total{"):
                    found = line.split('found="', 1)[1].split('"', 1)[0]
                    total[found] += int(float(line.rsplit(" ", 1)[1]))
    return total


class _Counting(logging.Handler):
    """Counts the proxy's warnings by what failed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.seen[" ".join(map(str, record.args or ()))] += 1


def _count(path: Path, text: str) -> int:
    try:
        return sum(1 for line in path.read_text(errors="replace").splitlines() if text in line)
    except OSError:
        return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--users", type=int, default=None, help="chats (default 2 × rate, at least 20)"
    )
    parser.add_argument(
        "--postgres", default=None, help="PostgreSQL server URL: run N brokers and N bots on it"
    )
    parser.add_argument(
        "--cold-bank",
        action="store_true",
        help="leave the mock bank to build each flooded account's 90-day history on its first "
        "payment (~16 ms of CPU each instead of ~1 ms; by default it is built before the flood, "
        "as a real bank has its history already)",
    )
    parser.add_argument("--brokers", type=int, default=2, help="with --postgres (default 2)")
    parser.add_argument("--bots", type=int, default=2, help="with --postgres (default 2)")
    parser.add_argument(
        "--proxy",
        choices=("auto", "python", "haproxy"),
        default="auto",
        help="with --postgres: the load balancer in front of the brokers and of the bots; auto "
        "(default): HAProxy if installed, as production runs one, else the built-in Python one "
        "(which shares this process, and its CPU, with the load generator)",
    )
    args = parser.parse_args()
    if args.proxy == "auto":
        args.proxy = "haproxy" if haproxy_path() else "python"
    users = args.users or max(20, int(2 * args.rate))
    if args.postgres:
        sys.exit(
            asyncio.run(
                main_cluster(
                    args.postgres,
                    args.brokers,
                    args.bots,
                    args.rate,
                    args.seconds,
                    users,
                    not args.cold_bank,
                    args.proxy,
                )
            )
        )
    sys.exit(asyncio.run(main(args.rate, args.seconds, users, not args.cold_bank)))
