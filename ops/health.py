"""``/healthz`` (the process is alive and serving) and ``/readyz`` (it can do its work: each
named check passes within its time limit; otherwise 503 naming the failing checks)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[None]]  # raises when not ready
CHECK_TIMEOUT_S = 2.0


async def _run(name: str, check: Check, timeout_s: float) -> str:
    try:
        async with asyncio.timeout(timeout_s):
            await check()
    except TimeoutError:
        return f"timed out after {timeout_s:g} s"
    except Exception as e:
        return f"failed: {type(e).__name__}"
    return "ok"


async def readiness(
    checks: Mapping[str, Check], timeout_s: float = CHECK_TIMEOUT_S
) -> tuple[bool, dict[str, str]]:
    """Run every check at once; (all passed, name → "ok" or why not)."""
    names = list(checks)
    results = await asyncio.gather(*(_run(n, checks[n], timeout_s) for n in names))
    outcome = dict(zip(names, results, strict=True))
    return all(r == "ok" for r in results), outcome


def add_health_routes(
    app: web.Application,
    service: str,
    checks: Callable[[web.Application], Mapping[str, Check]],
    extra: Callable[[], Mapping[str, str]] | None = None,
) -> None:
    """Add ``GET /healthz`` and ``GET /readyz``; ``checks(app)`` names what /readyz runs."""

    async def healthz(request: web.Request) -> web.Response:
        details = dict(extra()) if extra is not None else {}
        return web.json_response({"status": "ok", "service": service, **details})

    async def readyz(request: web.Request) -> web.Response:
        ready, outcome = await readiness(checks(request.app))
        if ready:
            return web.json_response({"status": "ready", "service": service, "checks": outcome})
        failing = [name for name, result in outcome.items() if result != "ok"]
        log.warning("%s is not ready: %s", service, ", ".join(failing))
        return web.json_response(
            {"status": "not_ready", "service": service, "failing": failing, "checks": outcome},
            status=503,
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
