"""/balance through the bot under bank faults: share of answers with balances, worst time.

Runs the whole system in this process (mock bank, broker, localchat, the real bot polling it,
as the bot's system tests do), links one user to Northwind, reads once, then for each fault
profile sends ``/balance`` messages one after the other and prints the share of answers that
showed balances (fresh or labelled "as of"), the share that were fresh, the median and worst
answer time, and whether the reads the broker logged as served match the answers shown.

    python -m bench.balances_faults [requests-per-profile]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlmodel import col, select

from consent.api.keys import BROKER
from consent.service.ratelimit import Limits, TokenBuckets
from consent.store.tables import AuditRow
from tests.bot.system import ALICE, System, start_system, stop_system
from tests.bot.test_conversations import link_bank

PROFILES: list[tuple[str, dict[str, float]]] = [
    ("30% errors", {"error_rate": 0.3}),
    ("2 s latency", {"latency_ms": 2000}),
    ("30% errors + 2 s latency", {"error_rate": 0.3, "latency_ms": 2000}),
]


def answered(text: str) -> bool:
    return "Your balances" in text or "⚠️" in text


async def served(system: System) -> int:
    async with system.env.broker.app[BROKER].sessions() as session:
        rows = await session.exec(
            select(AuditRow).where(
                col(AuditRow.action) == "read.balances", col(AuditRow.outcome) == "allowed"
            )
        )
        return len(rows.all())


async def profile(system: System, name: str, faults: dict[str, float], n: int) -> None:
    await system.env.bank.put("/sandbox/banks/northwind/faults", json=faults)
    before = await served(system)
    times: list[float] = []
    with_data = fresh = 0
    for _ in range(n):
        started = time.monotonic()
        reply = await system.say(ALICE, "/balance", answered, wait_s=15)
        times.append(time.monotonic() - started)
        text = reply["text"]
        with_data += "Available:" in text
        fresh += "Available:" in text and "as of" not in text
    logged = await served(system) - before
    print(
        f"  {name:<26} with data {with_data}/{n} ({with_data / n:.0%})  fresh {fresh}/{n}  "
        f"p50 {statistics.median(times):.2f} s  worst {max(times):.2f} s  "
        f"served-but-not-shown {logged - with_data}"
    )


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        system = await start_system(Path(tmp), f"sqlite+aiosqlite:///{tmp}/broker.db")
        try:
            # the rate limits are for humans, not for this load
            system.env.broker.app[BROKER].limits = Limits(
                TokenBuckets(10_000), TokenBuckets(10_000)
            )
            await link_bank(system, ALICE)
            await system.say(ALICE, "/balance", answered)  # the accounts are known from here
            print(f"/balance under bank faults, {n} requests each, target: every answer < 5 s")
            for name, faults in PROFILES:
                await profile(system, name, faults, n)
                await system.env.bank.put("/sandbox/banks/northwind/faults", json={})
        finally:
            await stop_system(system)


def main() -> None:
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20))


if __name__ == "__main__":
    main()
