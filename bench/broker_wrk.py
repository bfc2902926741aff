"""The broker's balances view against a bare aiohttp aggregator, both driven by wrk.

wrk (an external C load generator, Debian package ``wrk``) drives each side in one run: 64
connections over 64 linked subjects for the broker (one user per connection), the same 64
connections for the aggregator. The aggregator makes the same bank calls (the account list and
each account's balances, all at once once it knows the accounts, as the broker does) with the
same HTTP client settings (a default ``aiohttp.ClientSession``, a total timeout on each call, the
same JSON library, orjson), the same garbage-collector settings (:mod:`ops.gc_tuning`) and none
of the broker's work: no authorization, no crypto, no minimization, no access log. It answers
with the bank's pages as they came.

Other processes share the machine, so the two sides are measured in alternating slices (broker,
aggregator, aggregator, broker, …) and the figures are sums over the slices: both see the same
background load. The CPU time of each server process (``/proc/<pid>/stat``, user + system, every
thread) over its slices gives the CPU per request; the broker's is also split by thread (the
event loop, the others). One connection gives the added p50 latency: the
median over the slices of (broker p50 − aggregator p50) of neighbouring slices.

Targets: broker ≥ 0.8× the aggregator's throughput, ≤ 1.3× its CPU per request, < 1 ms added
p50 at one connection.

    python -m bench.broker_wrk [--seconds 10] [--connections 64] [--slices 5]
                               [--audit-sync full|normal]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bench.bank_transactions import _free_port, _wait_up
from bench.broker_balances import FAST, _proxy_token, _stop
from bench.services import ADMIN, dump_stacks_on_sigusr1, link, serve_bank, serve_broker
from ops.gc_tuning import tune_gc

BANK_TIMEOUT_S = 4.0  # the broker's default deadline: each of its bank calls has at most this

LUA = """
local paths = {%(paths)s}
local auth = %(auth)s
local i = 0
request = function()
  i = i + 1
  local headers = {}
  if auth ~= "" then
    headers["Authorization"] = auth
    headers["X-Purpose"] = "chat-service"
  end
  return wrk.format("GET", paths[(i %% #paths) + 1], headers)
end
done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p50_us\\": %%d, \\"p99_us\\": %%d, "
    .. "\\"non2xx\\": %%d, \\"socket_errors\\": %%d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
"""


def serve_aggregator(port: int, aisp: str, token: str) -> None:
    """The bank calls the broker makes, passed straight through (a process target)."""
    dump_stacks_on_sigusr1()
    known: list[str] = []

    async def balances(request: web.Request) -> web.Response:
        session: aiohttp.ClientSession = request.app["session"]
        auth = {"Authorization": f"Bearer {token}"}

        async def get(path: str) -> Any:
            # a timeout per call, as the broker gives each call what is left of its deadline
            timeout = aiohttp.ClientTimeout(total=BANK_TIMEOUT_S)
            async with session.get(f"{aisp}{path}", headers=auth, timeout=timeout) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise web.HTTPBadGateway()
            return orjson.loads(raw)

        listed, *pages = await asyncio.gather(
            get("/accounts"), *(get(f"/accounts/{a}/balances") for a in known)
        )
        ids = [str(a["AccountId"]) for a in listed["Data"]["Account"]]
        if not known:
            known.extend(ids)
            pages = list(await asyncio.gather(*(get(f"/accounts/{a}/balances") for a in ids)))
        body = orjson.dumps({"accounts": listed, "balances": pages})
        return web.Response(body=body, content_type="application/json")

    async def session_ctx(app: web.Application) -> Any:
        app["session"] = aiohttp.ClientSession()
        yield
        await app["session"].close()

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/balances", balances)
    tune_gc(app)  # the same process settings as the broker's
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    return _cpu(Path(f"/proc/{pid}/stat").read_text())


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU time so far of each live thread of a process, by ``tid:name``."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        out[f"{task.name}:{name}"] = _cpu(stat)
    return out


def _cpu(stat: str) -> float:
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed: int
    cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_s / max(1, self.requests)

    def line(self, name: str) -> str:
        return (
            f"{name:<26} {self.rps:8.0f} req/s  p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f}"
            f" ms  CPU {self.cpu_ms_per_request:5.2f} ms/req  ({self.requests} requests,"
            f" {self.failed} failed)"
        )


def total(runs: list[Run]) -> Run:
    """The slices of one side as one run: sums, and the median of the slices' percentiles."""
    return Run(
        sum(r.requests for r in runs),
        sum(r.seconds for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.failed for r in runs),
        sum(r.cpu_s for r in runs),
    )


def wrk(
    program: str, base: str, paths: list[str], auth: str, connections: int, seconds: float, pid: int
) -> Run:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            LUA % {"paths": ", ".join(json.dumps(p) for p in paths), "auth": json.dumps(auth)}
        )
    threads = str(min(2, connections))
    before = cpu_seconds(pid)
    out = subprocess.run(  # noqa: S603 - our own arguments to the wrk found on PATH
        [
            program,
            "-t",
            threads,
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",  # wrk takes whole seconds only ("2.5s" is refused)
            "-s",
            script.name,
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_seconds(pid) - before
    os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    return Run(
        r["requests"],
        r["seconds"],
        r["p50_us"] / 1000,
        r["p99_us"] / 1000,
        r["non2xx"] + r["socket_errors"],
        cpu,
    )


@dataclass(frozen=True)
class Side:
    """One server under test: where wrk sends what, and the process whose CPU is counted."""

    base: str
    paths: list[str]
    auth: str
    pid: int


def alternate(
    program: str, broker: Side, agg: Side, connections: int, seconds: float, slices: int
) -> tuple[list[Run], list[Run], dict[str, float]]:
    """``slices`` runs of each side, ``seconds / slices`` each (rounded to whole seconds, at least
    one: wrk takes no fractions), in the order b a a b b a …; also the broker's CPU seconds per
    thread over its slices."""
    each = float(max(1, round(seconds / slices)))
    b_runs: list[Run] = []
    a_runs: list[Run] = []
    threads: dict[str, float] = {}
    for i in range(slices):
        for side in (broker, agg) if i % 2 == 0 else (agg, broker):
            before = thread_cpu_seconds(side.pid) if side is broker else {}
            run = wrk(program, side.base, side.paths, side.auth, connections, each, side.pid)
            if side is broker:
                b_runs.append(run)
                for name, cpu in thread_cpu_seconds(side.pid).items():
                    threads[name] = threads.get(name, 0.0) + cpu - before.get(name, 0.0)
            else:
                a_runs.append(run)
    return b_runs, a_runs, threads


def by_role(threads: dict[str, float], pid: int) -> dict[str, float]:
    """Thread CPU grouped: the event loop (the process's main thread, whose id is the pid; not
    the lowest id, which a thread started after the ids wrapped around may have) and the others
    (the access-log writer's and the database driver's threads)."""
    loop = sum(cpu for name, cpu in threads.items() if int(name.split(":", 1)[0]) == pid)
    return {"event loop": loop, "other threads": sum(threads.values()) - loop}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def main(seconds: float, connections: int, slices: int, audit_sync: str = "full") -> int:
    program = shutil.which("wrk")
    if program is None:
        print("skipped: wrk is not installed (apt-get install -y wrk)")
        return 0
    ctx = mp.get_context("spawn")
    tmp = Path(tempfile.mkdtemp(prefix="chatbank-wrk-"))
    ring = f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    bank_port, broker_port, agg_port = _free_port(), _free_port(), _free_port()
    bank_url, broker_url = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{broker_port}"
    procs = [ctx.Process(target=serve_bank, args=(bank_port, 5), name="bank", daemon=True)]
    procs[0].start()
    try:
        await _wait_up(f"{bank_url}/banks")
        db = f"sqlite+aiosqlite:///{tmp / 'consent.db'}"
        broker = ctx.Process(
            target=serve_broker,
            args=(broker_port, bank_port, db, ring, {**FAST, "audit_sync": audit_sync}),
            name="broker",
        )
        procs.append(broker)
        broker.start()
        await _wait_up(f"{broker_url}/openapi.json")
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{broker_url}/admin/v1/platform-clients",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            ) as resp:
                credential = (await resp.json())["credential"]
            headers = {"Authorization": f"Bearer {credential}", "X-Purpose": "chat-service"}
            subjects = []
            for _ in range(connections):
                async with http.post(f"{broker_url}/v1/subjects", headers=headers) as resp:
                    subjects.append((await resp.json())["subject_id"])
                await link(http, broker_url, bank_url, headers, subjects[-1], ["balances"])
            token = await _proxy_token(http, bank_url)
        aisp = f"{bank_url}/banks/northwind/open-banking/v3.1/aisp"
        agg = ctx.Process(target=serve_aggregator, args=(agg_port, aisp, token), name="agg")
        procs.append(agg)
        agg.start()
        await _wait_up(f"http://127.0.0.1:{agg_port}/balances")
        assert broker.pid is not None and agg.pid is not None
        paths = [f"/v1/subjects/{s}/balances" for s in subjects]
        b_side = Side(broker_url, paths, f"Bearer {credential}", broker.pid)
        a_side = Side(f"http://127.0.0.1:{agg_port}", ["/balances"], "", agg.pid)
        print(
            f"wrk, {connections} connections over {connections} linked subjects, {seconds:g} s"
            f" a side in {slices} alternating slices; access log synced: {audit_sync};"
            f" load average {load_average()}"
        )
        for side in (b_side, a_side):  # warm up
            await asyncio.to_thread(
                wrk, program, side.base, side.paths, side.auth, connections, 2, side.pid
            )
        b_runs, a_runs, threads = await asyncio.to_thread(
            alternate, program, b_side, a_side, connections, seconds, slices
        )
        b, a = total(b_runs), total(a_runs)
        print(b.line("broker balances view"), flush=True)
        print(a.line("bare aggregator"), flush=True)
        roles = by_role(threads, b_side.pid)
        print(
            "  broker CPU by thread: "
            + ", ".join(
                f"{role} {1000 * cpu / max(1, b.requests):.2f} ms/req"
                for role, cpu in sorted(roles.items(), key=lambda kv: -kv[1])
            )
        )
        one_b = Side(b_side.base, paths[:1], b_side.auth, b_side.pid)
        b1_runs, a1_runs, _ = await asyncio.to_thread(
            alternate, program, one_b, a_side, 1, min(5.0, seconds), slices
        )
        b1, a1 = total(b1_runs), total(a1_runs)
        print(b1.line("broker, 1 connection"), flush=True)
        print(a1.line("aggregator, 1 connection"), flush=True)
        pairs = zip(b1_runs, a1_runs, strict=True)
        added = statistics.median(x.p50_ms - y.p50_ms for x, y in pairs)
        print(
            f"\nthroughput ratio {b.rps / a.rps:.2f}x (target >= 0.8x); CPU per request ratio"
            f" {b.cpu_ms_per_request / a.cpu_ms_per_request:.2f}x (target <= 1.3x); added p50"
            f" at 1 connection {added:+.2f} ms (target < 1 ms); load average {load_average()}"
        )
    finally:
        for p in procs:
            _stop(p)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--slices", type=int, default=5)
    parser.add_argument(
        "--audit-sync",
        choices=["full", "normal"],
        default="full",
        help="the broker's CONSENT_AUDIT_SYNC (default full: every commit synced to disk)",
    )
    args = parser.parse_args()
    sys.exit(
        asyncio.run(main(args.seconds, args.connections, max(1, args.slices), args.audit_sync))
    )
