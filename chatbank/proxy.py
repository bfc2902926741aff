"""A small round-robin HTTP reverse proxy for development and tests: several broker or bot
processes behind one address, the way a load balancer (nginx, HAProxy, a cloud LB) puts them in
production. A backend that refuses the connection (stopped, killed, restarting) is skipped and
the request goes to the next one; nothing had reached it, so retrying is safe even for POST."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

log = logging.getLogger(__name__)
BACKENDS = web.AppKey("backends", list[str])
HTTP = web.AppKey("http", aiohttp.ClientSession)
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Content-Length",
        "Content-Encoding",
        "Host",
    )
)


def _forwarded(headers: CIMultiDict[str] | dict[str, str], peer: str | None) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict(
        (k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP
    )
    if peer:
        out["X-Forwarded-For"] = peer
    return out


def create_proxy(backends: list[str], *, timeout_s: float = 30.0) -> web.Application:
    """An app that forwards every request to ``backends`` in turn (``http://host:port``)."""
    if not backends:
        raise ValueError("at least one backend")
    app = web.Application(client_max_size=1024 * 1024)
    app[BACKENDS] = [b.rstrip("/") for b in backends]
    turns = itertools.cycle(range(len(backends)))

    async def session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout_s), auto_decompress=False
        ) as http:
            app[HTTP] = http
            yield

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = _forwarded(CIMultiDict(request.headers), request.remote)
        headers["Host"] = request.host  # the public name, as a load balancer keeps it
        pool = app[BACKENDS]
        for _ in range(len(pool)):
            backend = pool[next(turns)]
            try:
                async with app[HTTP].request(
                    request.method,
                    backend + request.rel_url.path_qs,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                ) as resp:
                    payload = await resp.read()
                    out = _forwarded(CIMultiDict(resp.headers), None)
                    return web.Response(status=resp.status, body=payload, headers=out)
            except aiohttp.ClientConnectorError:
                log.info("backend %s refused the connection; trying the next", backend)
            except (aiohttp.ClientError, TimeoutError) as e:
                # the request may have reached the backend: do not send it twice
                log.warning("backend %s failed mid-request: %s", backend, type(e).__name__)
                return web.json_response({"error": "bad_gateway"}, status=502)
        return web.json_response({"error": "no_backend"}, status=502)

    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app
