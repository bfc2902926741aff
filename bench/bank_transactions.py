"""Throughput of the first page of ``/accounts/{id}/transactions`` on a 100,000-transaction
account, beside a bare aiohttp endpoint returning the same bytes, measured in the same run.

Each server runs in its own process; the load generator runs here with 64 concurrent clients.
Target: the bank serves at least 50% of the bare endpoint's throughput.

    python -m bench.bank_transactions [--seconds 8] [--concurrency 64] [--transactions 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import sys
from datetime import UTC, datetime
from multiprocessing.connection import Connection

import aiohttp
from aiohttp import web

from bench.load import run_load

ACCOUNT = "noc000001a0"
PATH = f"/banks/northwind/open-banking/v3.1/aisp/accounts/{ACCOUNT}/transactions"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_bank(port: int, count: int, pipe: Connection) -> None:
    """Child process: the mock bank with one very long history and a consent-bound token."""
    from bank_mock.app import create_app
    from bank_mock.history import heavy_history
    from bank_mock.keys import BANKS, GRANTS
    from bank_mock.models import Client, Consent, ConsentStatus
    from bank_mock.settings import BankSettings

    settings = BankSettings(customers_per_bank=1, port=port)
    app = create_app(settings)
    bank = app[BANKS]["northwind"]
    now = datetime.now(UTC)
    account = bank.accounts[ACCOUNT]
    bank.replace_history(ACCOUNT, heavy_history(settings.seed, bank.profile, account, now, count))
    bank.clients["bench"] = Client(
        "bench", "northwind", "-", "bench", ["http://127.0.0.1/cb"], None
    )
    perms = [
        "ReadAccountsDetail",
        "ReadTransactionsDetail",
        "ReadTransactionsCredits",
        "ReadTransactionsDebits",
    ]
    bank.consents["bench"] = Consent(
        "bench",
        "northwind",
        "bench",
        perms,
        ConsentStatus.AUTHORISED,
        now,
        now,
        None,
        None,
        None,
        customer_id=account.customer_id,
        account_ids=[ACCOUNT],
        scopes=["accounts"],
    )
    grant = app[GRANTS].issue_access(
        client_id="bench",
        bank_id="northwind",
        consent_id="bench",
        scopes=frozenset({"accounts"}),
        now=now,
        ttl_s=3600,
    )
    pipe.send(grant.token)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_bare(port: int, body: bytes) -> None:
    """Child process: a bare aiohttp endpoint returning ``body``."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(PATH, handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def main(seconds: float, concurrency: int, count: int) -> int:
    ctx = mp.get_context("spawn")
    bank_port, bare_port = _free_port(), _free_port()
    parent, child = ctx.Pipe()
    print(f"starting the bank with {count:,} transactions on {ACCOUNT} …", flush=True)
    bank = ctx.Process(target=serve_bank, args=(bank_port, count, child), daemon=True)
    bank.start()
    token = parent.recv()
    headers = {"Authorization": f"Bearer {token}"}
    bank_url = f"http://127.0.0.1:{bank_port}{PATH}"
    await _wait_up(f"http://127.0.0.1:{bank_port}/banks")
    async with aiohttp.ClientSession(headers=headers) as session, session.get(bank_url) as resp:
        body = await resp.read()
        assert resp.status == 200, body[:300]
    bare = ctx.Process(target=serve_bare, args=(bare_port, body), daemon=True)
    bare.start()
    bare_url = f"http://127.0.0.1:{bare_port}{PATH}"
    await _wait_up(bare_url)
    print(
        f"first page: {len(body):,} bytes; {concurrency} concurrent clients, {seconds:.0f} s each",
        flush=True,
    )
    try:
        await run_load(bank_url, headers, concurrency, 1.0)  # warm-up
        bank_result = await run_load(bank_url, headers, concurrency, seconds)
        print(bank_result.line("bank transactions page 1"), flush=True)
        await run_load(bare_url, {}, concurrency, 1.0)
        bare_result = await run_load(bare_url, {}, concurrency, seconds)
        print(bare_result.line("bare aiohttp, same bytes"), flush=True)
    finally:
        bank.terminate()
        bare.terminate()
    ratio = bank_result.rps / bare_result.rps if bare_result.rps else 0.0
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    print(f"ratio: {ratio:.0%} of the bare endpoint's throughput ({verdict} the 50% target)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--transactions", type=int, default=100_000)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.seconds, args.concurrency, args.transactions)))
