"""Prometheus metrics for an aiohttp service: requests and latency per route, and ``/metrics``.

Routes are labelled by their canonical path (``/v1/subjects/{subject_id}/balances``), never the
raw URL, so no id reaches a label and the series stay few; a request that matched no route is
``unmatched``. Labels hold only service, route, method, status, bank and outcome names: never a
subject id, an amount or any other per-user value.

The per-request cost is kept small for the hot paths: the labelled children are looked up once
per (service, route, method, status) and cached, so a request costs two clock reads, a dict
lookup, one counter increment and one histogram observation.

A client that went away mid-request (``ConnectionResetError``, which aiohttp's
``ClientConnectionResetError`` is) is expected: one log line, no traceback, counted as 499.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLIENT_GONE = 499  # nginx's code for "the client closed the request"

REQUESTS = Counter(
    "chatbank_http_requests_total",
    "HTTP requests answered, by service, route (canonical path), method and status",
    ["service", "route", "method", "status"],
)
LATENCY = Histogram(
    "chatbank_http_request_duration_seconds",
    "Time to answer an HTTP request, by service, route and method",
    ["service", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def route_of(request: web.Request) -> str:
    """The route's canonical path, or ``unmatched``."""
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


Recorder = Callable[[web.Request, int, float], None]


def recorder(service: str) -> Recorder:
    """``record(request, status, elapsed)``: count and time one answered request of ``service``
    (the labelled children looked up once per route, method and status, then cached)."""
    counters: dict[tuple[str, str, int], Any] = {}
    timers: dict[tuple[str, str], Any] = {}

    def record(request: web.Request, status: int, elapsed: float) -> None:
        route, method = route_of(request), request.method
        counter = counters.get((route, method, status))
        if counter is None:
            counter = counters[(route, method, status)] = REQUESTS.labels(
                service, route, method, str(status)
            )
        timer = timers.get((route, method))
        if timer is None:
            timer = timers[(route, method)] = LATENCY.labels(service, route, method)
        counter.inc()
        timer.observe(elapsed)

    return record


def client_gone(service: str, request: web.Request, error: BaseException) -> web.Response:
    """A client that went away mid-request: one log line, no traceback; answered (to nobody)
    with :data:`CLIENT_GONE`."""
    log.info(
        "%s: the client went away during %s %s (%s)",
        service,
        request.method,
        route_of(request),
        type(error).__name__,
    )
    return web.Response(status=CLIENT_GONE)  # nobody reads it; aiohttp drops it


def metrics_middleware(service: str) -> Any:
    """Count and time every request of ``service``; make a vanished client one log line."""
    record = recorder(service)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        except ConnectionResetError as e:
            status = CLIENT_GONE
            return client_gone(service, request, e)
        finally:
            record(request, status, time.perf_counter() - started)

    return middleware


Refresh = Callable[[], Awaitable[None]]


def metrics_handler(refresh: Refresh | None = None) -> Handler:
    """``GET /metrics`` in Prometheus' text format; ``refresh`` updates gauges read at scrape
    time (outbox depth, breaker states) first."""

    async def handler(request: web.Request) -> web.Response:
        if refresh is not None:
            await refresh()
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    return handler
