"""Receipt latency from booking a card payment at the bank to the Bot API ``sendMessage``.

Card payments are booked at the mock bank at a steady rate (``POST /sandbox/…/payments``),
round-robin over ``--users`` linked chats with receipts on. Each travels bank (books it, signs
an OBIE ``resource-update`` SET that carries no data) → broker (verifies, marks the account) →
receipt worker (waits the bundle window, fetches the new transactions with the consent's token,
minimizes, seals, outbox) → relay (signed webhook) → bot (verifies, de-duplicates) →
localchat's ``sendMessage``. Prints p50/p95/p99/max from booking to ``sendMessage`` (a payment
bundled with others counts when its bundle is sent), how many messages carried them, and how
many were lost.

Target (issue #12): every receipt within 2 s of booking at 20 payments a second, none lost.

    python -m bench.receipt_latency [--rate 20] [--seconds 30] [--users 20] [--bundle 0.3]

The bank and the broker run in their own processes (as in production, on this 2-core machine);
the bot and localchat share this one, which also books the payments and notes when each
receipt reaches ``sendMessage``. 20 payments a second over 20 chats is one a second per chat,
Telegram's pace for one chat.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.bank_transactions import _free_port, _wait_up
from bench.hops import percentile
from bench.services import link, platform_bot, serve_bank, serve_broker

TOKEN = "4242:receipt-latency"
SHOP = "Bench Shop "
KEYS = re.compile(re.escape(SHOP) + r"(\d{6})")


async def main(rate: float, seconds: float, users: int, bundle: float) -> int:
    from bot.runtime import BotRuntime
    from bot.store import repo
    from bot.store.db import make_engine, session_factory
    from bot.store.tables import ChatUser
    from consent.vault.keyring import generate_kek
    from localchat import store as chat_store
    from localchat.app import create_app as create_localchat
    from localchat.settings import DemoUser
    from localchat.settings import Settings as LocalchatSettings

    arrivals: dict[str, float] = {}
    messages = 0
    original = chat_store.Store.add_message

    def timed(
        self: Any, chat_id: int, text: str, *, from_bot: bool, sender_id: int | None = None
    ) -> Any:
        nonlocal messages
        if from_bot:
            found = KEYS.findall(text)
            messages += bool(found)
            for key in found:
                arrivals.setdefault(key, time.perf_counter())
        return original(self, chat_id, text, from_bot=from_bot, sender_id=sender_id)

    chat_store.Store.add_message = timed  # type: ignore[method-assign]

    ctx = mp.get_context("spawn")
    folder = Path(tempfile.mkdtemp(prefix="chatbank-receipts-"))
    bank_port, broker_port, chat_port, bot_port = (_free_port() for _ in range(4))
    ring = f"1:{base64.b64encode(generate_kek()).decode()}"
    overrides = {"relay_idle_s": 0.5, "receipt_bundle_s": bundle, "reads_per_minute": 100_000}
    procs = [
        ctx.Process(target=serve_bank, args=(bank_port, users), daemon=True),
        ctx.Process(
            target=serve_broker,
            args=(
                broker_port,
                bank_port,
                f"sqlite+aiosqlite:///{folder / 'consent.db'}",
                ring,
                overrides,
            ),
            daemon=True,
        ),
    ]
    for p in procs:
        p.start()
    bank, broker = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{broker_port}"
    chat_ids = [6000 + i for i in range(users)]
    chat_settings = LocalchatSettings(
        port=chat_port,
        bot_token=TOKEN,
        users=[DemoUser(id=c, first_name=f"U{c}", language_code="en") for c in chat_ids],
    )
    runner = web.AppRunner(create_localchat(chat_settings), access_log=None)
    runtime: BotRuntime | None = None
    sent: dict[str, float] = {}
    failures = 0
    booked_in = 0.0
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
                max_messages_per_s=1000,
            )
            engine = make_engine(runtime.settings.database_url)
            sessions = session_factory(engine)
            accounts: list[str] = []
            async with http.get(f"{bank}/sandbox/banks/northwind/customers") as resp:
                customers = {c["username"]: c for c in (await resp.json())["customers"]}
            print(f"linking {users} users with receipts on …", flush=True)
            for i, chat_id in enumerate(chat_ids):
                async with http.post(f"{broker}/v1/subjects", headers=auth) as resp:
                    subject = (await resp.json())["subject_id"]
                username = f"demo{i + 1}"
                await link(
                    http, broker, bank, auth, subject, ["transactions"], username, receipts=True
                )
                await repo.save_user(
                    sessions,
                    ChatUser(
                        telegram_user_id=chat_id, chat_id=chat_id, subject_id=subject, language="en"
                    ),
                )
                card = next(a for a in customers[username]["accounts"] if a["card_ids"])
                accounts.append(card["account_id"])
            await engine.dispose()

            total = int(rate * seconds)
            print(f"booking {total} card payments at {rate:g}/s for {seconds:g} s …", flush=True)

            async def book(k: int) -> None:
                nonlocal failures
                key = f"{k:06d}"
                body = {
                    "account_id": accounts[k % users],
                    "merchant": f"{SHOP}{key}",
                    "amount": f"{1 + k % 50}.{k % 100:02d}",
                }
                sent[key] = time.perf_counter()
                async with http.post(f"{bank}/sandbox/banks/northwind/payments", json=body) as r:
                    if r.status >= 400:
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
            deadline = time.perf_counter() + 20
            while time.perf_counter() < deadline and not all(k in arrivals for k in sent):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        chat_store.Store.add_message = original  # type: ignore[method-assign]
        if runtime is not None:
            await runtime.stop()
        await runner.cleanup()
        for p in procs:
            p.terminate()
            p.join(5)
    latencies = [(arrivals[k] - t) * 1000 for k, t in sent.items() if k in arrivals]
    lost = len(sent) - len(latencies)
    print(
        f"\nbooked {len(sent)} card payments in {booked_in:.1f} s "
        f"({len(sent) / max(booked_in, 1e-9):.1f}/s); {failures} refused by the bank; "
        f"bundle window {bundle:g} s"
    )
    if latencies:
        print(
            f"booking → sendMessage: p50 {statistics.median(latencies):.1f} ms · "
            f"p95 {percentile(latencies, 95):.1f} ms · p99 {percentile(latencies, 99):.1f} ms · "
            f"max {max(latencies):.1f} ms"
        )
    print(f"{len(latencies)} receipts in {messages} messages (bursts on one account bundle)")
    print(f"lost: {lost} (target 0) · p99 target < 2000 ms")
    ok = lost == 0 and bool(latencies) and percentile(latencies, 99) < 2000
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="payments per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=20, help="linked chats (round-robin)")
    parser.add_argument("--bundle", type=float, default=0.3, help="broker's bundle window (s)")
    a = parser.parse_args()
    sys.exit(asyncio.run(main(a.rate, a.seconds, a.users, a.bundle)))
