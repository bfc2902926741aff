"""The balances view through the broker, beside a bare aiohttp pass-through proxy that makes the
same bank calls with no checks, no crypto and no audit, measured in the same run at 64
concurrent clients; then the broker's memory with 100,000 consents in its database.

Targets: broker throughput at least 60% of the proxy's, added p50 latency under 2 ms, memory
under 300 MB with 100,000 consents.

    python -m bench.broker_balances [--seconds 5] [--concurrency 64] [--consents 100000]
                                    [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

With ``--database-url`` naming a PostgreSQL server, the broker runs on a throwaway database
created there (and dropped afterwards); by default it runs on a fresh SQLite file. The memory
check always uses SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import secrets
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.bank_memory import rss_mb
from bench.bank_transactions import _free_port, _wait_up
from bench.load import run_load
from bench.services import ADMIN, dump_stacks_on_sigusr1, link, serve_bank, serve_broker
from chatbank.scratch_db import scratch_databases
from consent.store.pgpool import postgres_dsn

# the rate limits are for humans and for a whole platform, not for this load
FAST = {"reads_per_minute": 10_000_000, "client_requests_per_minute": 10_000_000}


def serve_proxy(port: int, aisp: str, token: str) -> None:
    """The same two bank calls per account as the broker makes, passed straight through."""
    dump_stacks_on_sigusr1()

    async def balances(request: web.Request) -> web.Response:
        session: aiohttp.ClientSession = request.app["session"]
        auth = {"Authorization": f"Bearer {token}"}
        async with session.get(f"{aisp}/accounts", headers=auth) as resp:
            accounts = (await resp.json())["Data"]["Account"]

        async def one(account_id: str) -> Any:
            async with session.get(f"{aisp}/accounts/{account_id}/balances", headers=auth) as resp:
                return await resp.json()

        pages = await asyncio.gather(*(one(a["AccountId"]) for a in accounts))
        return web.json_response({"accounts": accounts, "balances": pages})

    async def session_ctx(app: web.Application) -> Any:
        app["session"] = aiohttp.ClientSession()
        yield
        await app["session"].close()

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/balances", balances)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _proxy_token(http: aiohttp.ClientSession, bank: str) -> str:
    """A consent-bound token for the proxy, by the same public flow any client uses."""
    import hashlib

    async with http.post(
        f"{bank}/banks/northwind/register",
        json={"client_name": "proxy", "redirect_uris": ["http://127.0.0.1/cb"]},
    ) as resp:
        reg = await resp.json()
    pair = f"{reg['client_id']}:{reg['client_secret']}".encode()
    auth = "Basic " + base64.b64encode(pair).decode()
    async with http.post(
        f"{bank}/banks/northwind/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": auth},
    ) as resp:
        cc = (await resp.json())["access_token"]
    consent = {"Data": {"Permissions": ["ReadAccountsDetail", "ReadBalances"]}, "Risk": {}}
    async with http.post(
        f"{bank}/banks/northwind/open-banking/v3.1/aisp/account-access-consents",
        json=consent,
        headers={"Authorization": f"Bearer {cc}"},
    ) as resp:
        consent_id = (await resp.json())["Data"]["ConsentId"]
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    body = {"username": "demo1", "redirect_uri": "http://127.0.0.1/cb", "code_challenge": challenge}
    async with http.post(
        f"{bank}/sandbox/banks/northwind/consents/{consent_id}/approve", json=body
    ) as resp:
        code = (await resp.json())["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1/cb",
        "code_verifier": verifier,
    }
    async with http.post(
        f"{bank}/banks/northwind/token", data=form, headers={"Authorization": auth}
    ) as resp:
        return str((await resp.json())["access_token"])


def fill_consents(db_url: str, count: int) -> None:
    """Write ``count`` authorized consents (each with its wrapped data key) straight into the db."""
    import sqlalchemy as sa

    from consent.store.migrate import upgrade

    upgrade(db_url)
    sync_url = db_url.replace("sqlite+aiosqlite", "sqlite")
    engine = sa.create_engine(sync_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO platform_client VALUES ('pc_fill','fill','x',NULL,x'00',1,x'00',:now)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text("INSERT INTO subject VALUES (:s,'pc_fill',:now)"),
            [{"s": f"sub_{i}", "now": now} for i in range(count)],
        )
        rows = [
            {
                "c": f"con_{i}",
                "s": f"sub_{i}",
                "st": f"state_{i}",
                "now": now,
                "exp": now + timedelta(days=90),
            }
            for i in range(count)
        ]
        conn.execute(
            sa.text(
                "INSERT INTO consent (consent_id, subject_id, client_id, bank_id, scopes, purpose,"
                " status, created_at, expires_at, state, renewal_noticed)"
                " VALUES (:c, :s, 'pc_fill', 'northwind', 'balances', 'chat-service', 'authorized',"
                " :now, :exp, :st, 0)"
            ),
            rows,
        )
        conn.execute(
            sa.text("INSERT INTO consent_key VALUES (:c, 1, :w)"),
            [{"c": f"con_{i}", "w": secrets.token_bytes(61)} for i in range(count)],
        )
    engine.dispose()


def _stop(proc: Any) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if the process has not exited in 10 s."""
    proc.terminate()
    proc.join(10)
    if proc.is_alive():
        print(
            f"({proc.name}, process {proc.pid}, ignored SIGTERM for 10 s; its stacks follow;"
            " killed)",
            file=sys.stderr,
            flush=True,
        )
        os.kill(proc.pid, signal.SIGUSR1)  # faulthandler prints every thread's stack
        proc.join(1)
        proc.kill()
        proc.join()


async def main(seconds: float, concurrency: int, consents: int, database_url: str | None) -> int:
    if database_url and postgres_dsn(database_url) is not None:
        async with scratch_databases(database_url, 1, "chatbank_bench") as (db,):
            return await _run(seconds, concurrency, consents, db)
    return await _run(seconds, concurrency, consents, database_url)


async def _run(seconds: float, concurrency: int, consents: int, database_url: str | None) -> int:
    ctx = mp.get_context("spawn")
    tmp = Path(tempfile.mkdtemp(prefix="chatbank-bench-"))
    ring = f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    bank_port, broker_port, proxy_port = _free_port(), _free_port(), _free_port()
    bank_url, broker_url = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{broker_port}"
    procs = [ctx.Process(target=serve_bank, args=(bank_port, 5), name="bank", daemon=True)]
    procs[0].start()
    await _wait_up(f"{bank_url}/banks")
    db = database_url or f"sqlite+aiosqlite:///{tmp / 'consent.db'}"
    procs.append(
        ctx.Process(
            target=serve_broker,
            args=(broker_port, bank_port, db, ring, FAST),
            name="broker",
            daemon=True,
        )
    )
    procs[1].start()
    await _wait_up(f"{broker_url}/openapi.json")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{broker_url}/admin/v1/platform-clients",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            ) as resp:
                credential = (await resp.json())["credential"]
            headers = {"Authorization": f"Bearer {credential}", "X-Purpose": "chat-service"}
            subjects = []
            for _ in range(concurrency):  # one user per client, as in real traffic
                async with http.post(f"{broker_url}/v1/subjects", headers=headers) as resp:
                    subjects.append((await resp.json())["subject_id"])
                await link(http, broker_url, bank_url, headers, subjects[-1], ["balances"])
            token = await _proxy_token(http, bank_url)
        aisp = f"{bank_url}/banks/northwind/open-banking/v3.1/aisp"
        procs.append(
            ctx.Process(
                target=serve_proxy, args=(proxy_port, aisp, token), name="proxy", daemon=True
            )
        )
        procs[2].start()
        proxy_url = f"http://127.0.0.1:{proxy_port}/balances"
        await _wait_up(proxy_url)
        broker_balances = [f"{broker_url}/v1/subjects/{s}/balances" for s in subjects]
        who = "one linked user per client (demo1 at Northwind, 3 accounts)"
        store = "PostgreSQL" if db.startswith("postgres") else "SQLite"
        print(f"{concurrency} concurrent clients, {seconds:.0f} s each; {who}; broker on {store}")
        await run_load(broker_balances, headers, concurrency, 1.0)
        broker = await run_load(broker_balances, headers, concurrency, seconds)
        print(broker.line("broker balances view"), flush=True)
        await run_load(proxy_url, {}, concurrency, 1.0)
        proxy = await run_load(proxy_url, {}, concurrency, seconds)
        print(proxy.line("bare pass-through proxy"), flush=True)
        single = min(3.0, seconds)
        single_broker = await run_load(broker_balances[0], headers, 1, single)
        single_proxy = await run_load(proxy_url, {}, 1, single)
        print(single_broker.line("broker, 1 client"), flush=True)
        print(single_proxy.line("proxy, 1 client"), flush=True)
        ratio = broker.rps / proxy.rps if proxy.rps else 0.0
        added = single_broker.p50_ms - single_proxy.p50_ms
        print(
            f"\nthroughput at {concurrency} clients: broker {broker.rps:.0f} req/s vs proxy"
            f" {proxy.rps:.0f} req/s = {ratio:.0%} (target ≥ 60%)"
        )
        print(
            f"added p50 latency at 1 client: {single_broker.p50_ms:.2f} - {single_proxy.p50_ms:.2f}"
            f" = {added:.2f} ms (target < 2 ms)"
        )
    finally:
        for p in procs:
            _stop(p)
    mem_db = f"sqlite+aiosqlite:///{tmp / 'many.db'}"
    started = time.perf_counter()
    await asyncio.to_thread(fill_consents, mem_db, consents)
    print(f"\nwrote {consents:,} consents in {time.perf_counter() - started:.1f} s", flush=True)
    port = _free_port()
    proc = ctx.Process(
        target=serve_broker, args=(port, bank_port, mem_db, ring, FAST), name="broker", daemon=True
    )
    proc.start()
    try:
        await _wait_up(f"http://127.0.0.1:{port}/openapi.json")
        assert proc.pid is not None
        print(f"broker RSS with {consents:,} consents: {rss_mb(proc.pid):.1f} MB (target < 300 MB)")
    finally:
        _stop(proc)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--consents", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL server (default SQLite)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.seconds, args.concurrency, args.consents, args.database_url)))
