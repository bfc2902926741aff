"""Chat views with one of two banks stalled, and the first /balance after linking a slow bank.

Runs the whole system in this process (mock bank, broker, localchat, the real bot polling it,
as the bot's system tests do). Part 1: each of the three demo users links Northwind, the bank is
given 2 s latency, and the user's very first ``/balance`` is timed (fresh or not). Part 2: one
user links Northwind and Libertas, Northwind stalls (6 s), and ``/transactions``, a spending
question and ``/freeze`` are sent one after the other; printed per view: how many answers showed
Libertas's data and named Northwind, the median and worst answer time (target: every answer
< 5 s).

    python -m bench.views_faults [requests-per-view]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from consent.api.keys import BROKER
from consent.service.ratelimit import Limits, TokenBuckets
from tests.bot.system import ALICE, OMAR, ZOFIA, System, start_system, stop_system
from tests.bot.test_conversations import link_bank

NOTE = "Northwind Bank did not answer; showing the others."
VIEWS: list[tuple[str, str, Callable[[str], bool]]] = [
    ("/transactions", "/transactions", lambda t: "Transactions" in t and NOTE in t),
    ("spending", "how much did I spend this month", lambda t: "Spending" in t),
    ("/freeze", "/freeze", lambda t: NOTE in t),
]


def answered(text: str) -> bool:
    return "⚠️" in text or "Your balances" in text or "Transactions" in text or "Spending" in text


async def first_balances(system: System) -> None:
    print("first /balance right after linking, Northwind at 2 s latency:")
    for user in (ALICE, OMAR, ZOFIA):
        await system.env.bank.put("/sandbox/banks/northwind/faults", json={})
        await link_bank(system, user, "northwind")
        await system.env.bank.put("/sandbox/banks/northwind/faults", json={"latency_ms": 2000})
        started = time.monotonic()
        reply = await system.say(user, "/balance", lambda t: "⚠️" in t or "🏦" in t, wait_s=15)
        took = time.monotonic() - started
        fresh = "⚠️" not in reply["text"] and "⏳" not in reply["text"]
        print(f"  user {user}: {took:.2f} s  {'fresh' if fresh else 'NOT fresh'}")
    await system.env.bank.put("/sandbox/banks/northwind/faults", json={})


async def stalled(system: System, n: int) -> None:
    await link_bank(system, ALICE, "libertas")
    await system.env.bank.put("/sandbox/banks/northwind/faults", json={"latency_ms": 6000})
    print(f"Northwind stalled (6 s), Libertas fine; {n} requests per view, target < 5 s:")
    for name, text, good in VIEWS:
        times: list[float] = []
        ok = 0
        for _ in range(n):
            started = time.monotonic()
            reply = await system.say(ALICE, text, answered, wait_s=15)
            times.append(time.monotonic() - started)
            ok += good(reply["text"]) and "Northwind Bank" in reply["text"]
        print(
            f"  {name:<14} others shown, Northwind named {ok}/{n}  "
            f"p50 {statistics.median(times):.2f} s  worst {max(times):.2f} s"
        )
    await system.env.bank.put("/sandbox/banks/northwind/faults", json={})


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        system = await start_system(Path(tmp), f"sqlite+aiosqlite:///{tmp}/broker.db")
        try:
            # the rate limits are for humans, not for this load
            system.env.broker.app[BROKER].limits = Limits(
                TokenBuckets(10_000), TokenBuckets(10_000)
            )
            await first_balances(system)
            await stalled(system, n)
        finally:
            await stop_system(system)


def main() -> None:
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 5))


if __name__ == "__main__":
    main()
