"""HAProxy in front of several broker or bot processes: the production kind of load balancer,
for ``chatbank cluster --proxy haproxy`` and the benchmarks.

:mod:`chatbank.proxy` does the same job in Python, in the process that runs the cluster; under a
flood its two HTTP sides per request cost that process about a third of its CPU, which the
benchmarks then count against the system they measure (the bench process is also the load
generator). HAProxy (Debian's ``haproxy``) does it in C for a few percent of one core.

The behaviour matches :func:`chatbank.proxy.create_proxy` (``tests/chatbank/test_proxy.py``
checks both): requests go round-robin, a backend that refuses the connection is skipped (``option
redispatch``: nothing reached it, so trying the next is safe even for POST), one that fails
mid-request is a 502 and is never sent the request again, the ``Host`` header is kept and
``X-Forwarded-For`` added. Only requests that went wrong are logged (``haproxy-<port>.log``).
Backends are not health-checked: a refused connection is cheap to find out per request, and a
check would make a restarted process wait for its next round.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

READY_TIMEOUT_S = 10.0


def haproxy_path() -> str | None:
    """Where the ``haproxy`` program is, or None if it is not installed."""
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )


def config_text(port: int, backends: list[str], *, timeout_s: float = 30.0) -> str:
    """An HAProxy configuration listening on 127.0.0.1:``port`` for ``backends``
    (``http://host:port``)."""
    if not backends:
        raise ValueError("at least one backend")
    servers = []
    for n, url in enumerate(backends):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"backend {url!r}: expected http://host:port")
        servers.append(f"    server b{n + 1} {parts.hostname}:{parts.port}")
    timeout_ms = round(timeout_s * 1000)
    # retries: as many as there are backends, each to the next one (redispatch 1), and only
    # for connections that failed to open: a request a backend received is never sent twice
    return "\n".join(
        [
            "global",
            "    maxconn 4096",
            "    nbthread 1",
            "    log stdout format raw local0",
            "defaults",
            "    mode http",
            "    log global",
            "    option httplog",
            "    option dontlog-normal",  # only what went wrong: 5xx, aborts, redispatches
            "    option dontlognull",  # not a connection that sent nothing (a readiness probe)
            "    timeout connect 2s",
            f"    timeout client {timeout_ms}ms",
            f"    timeout server {timeout_ms}ms",
            "    timeout http-keep-alive 60s",
            f"    retries {len(backends)}",
            "    retry-on conn-failure",
            "    option redispatch 1",
            "    option forwardfor",
            "    http-reuse safe",
            "frontend in",
            f"    bind 127.0.0.1:{port}",
            "    default_backend pool",
            "backend pool",
            "    balance roundrobin",
            *servers,
            "",
        ]
    )


def logged_errors(log: str) -> list[str]:
    """What each request in an HAProxy log went wrong with, as ``"<status> <termination
    state>"`` (``"502 SH--"``: the server hung up mid-request); only what reached a backend."""
    out = []
    for line in log.splitlines():
        fields = line.split()
        at = next((i for i, f in enumerate(fields) if f.startswith("pool/")), None)
        if at is not None and len(fields) > at + 6:
            out.append(f"{fields[at + 2]} {fields[at + 6]}")
    return out


PR_SET_PDEATHSIG = 1
# looked up here, in the parent: the child between fork and exec only calls it (no import, no
# allocation, nothing that could wait on a lock another thread held at the fork)
_PRCTL = (
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl
    if sys.platform.startswith("linux")
    else None
)


def _die_with_parent() -> None:
    """In the child before exec (Linux): a SIGTERM when the process that started it ends, even
    by ``kill -9``, so an HAProxy never outlives its cluster holding the cluster's ports."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))


class HAProxy:
    """One ``haproxy`` process in the foreground of this one; :meth:`close` stops it."""

    def __init__(self, port: int, backends: list[str], folder: Path) -> None:
        path = haproxy_path()
        if path is None:
            raise RuntimeError("haproxy is not installed (apt-get install haproxy)")
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.config = folder / f"haproxy-{port}.cfg"
        self.config.write_text(config_text(port, backends))
        self.log = folder / f"haproxy-{port}.log"
        self._path = path
        self.popen: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = await asyncio.create_subprocess_exec(
                self._path,
                "-db",
                "-f",
                str(self.config),
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # one prctl call (see _PRCTL)
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.popen.returncode is not None:
                raise RuntimeError(f"haproxy exited with {self.popen.returncode}: see {self.log}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"haproxy did not listen on {self.port}") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def close(self) -> None:
        popen = self.popen
        if popen is None or popen.returncode is not None:
            return
        popen.terminate()
        try:
            await asyncio.wait_for(popen.wait(), 10)
        except TimeoutError:
            popen.kill()
            await popen.wait()
