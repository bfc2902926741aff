"""Memory of the mock-bank service with 10,000 customers per bank (40,000 in all).

Starts the real service in a child process, reads its resident set size after start-up, then
again after a sample of accounts has had its history generated and read over HTTP.
Target: under 500 MB.

    python -m bench.bank_memory [--customers 10000] [--sample 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import time

import aiohttp

from bench.bank_transactions import _free_port, _wait_up


def serve(port: int, customers: int) -> None:
    from aiohttp import web

    from bank_mock.app import create_app
    from bank_mock.settings import BankSettings

    app = create_app(BankSettings(customers_per_bank=customers, port=port))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def main(customers: int, sample: int) -> int:
    ctx = mp.get_context("spawn")
    port = _free_port()
    started = time.perf_counter()
    proc = ctx.Process(target=serve, args=(port, customers), daemon=True)
    proc.start()
    assert proc.pid is not None
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_up(f"{base}/banks")
        took = time.perf_counter() - started
        print(f"{customers:,} customers per bank x 4 banks up in {took:.1f} s")
        print(f"RSS after start-up:                 {rss_mb(proc.pid):7.1f} MB")
        async with aiohttp.ClientSession() as session:
            for bank_id, prefix in (
                ("northwind", "no"),
                ("libertas", "li"),
                ("wisla", "wi"),
                ("nakheel", "na"),
            ):
                for i in range(1, sample // 4 + 1):
                    url = f"{base}/sandbox/banks/{bank_id}/raw/accounts/{prefix}c{i:06d}a0"
                    async with session.get(url) as resp:
                        await resp.read()
        print(f"RSS after reading {sample} histories:    {rss_mb(proc.pid):7.1f} MB")
    finally:
        proc.terminate()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=1000)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.customers, args.sample)))
