"""The broker's one middleware: every failure becomes ``{"error": code, "detail": ...}`` (no
traceback leaks), ids in the path and query values are checked first
(:func:`consent.api.params.check_ids`), every request is counted and timed
(:func:`ops.metrics.recorder`), and the requests in progress are counted (:class:`InFlight`).

One middleware, not three: each layer costs aiohttp a handler call and a coroutine per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from consent.api.params import check_ids
from consent.service.errors import BrokerError
from consent.vault.keyring import VaultError
from ops.metrics import CLIENT_GONE, client_gone, recorder

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_json(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status, headers=headers)


class InFlight:
    """How many requests the broker is answering right now."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def broker_middleware(inflight: InFlight, service: str = "consent") -> Any:
    """The middleware described in the module docstring, counting into ``inflight``."""
    record = recorder(service)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        inflight.count += 1
        try:
            response = await _answer(request, handler)
            status = response.status
            return response
        except web.HTTPException as e:  # a redirect, passed on as it is
            status = e.status
            raise
        except ConnectionResetError as e:
            status = CLIENT_GONE
            return client_gone(service, request, e)
        finally:
            inflight.count -= 1
            record(request, status, time.perf_counter() - started)

    return middleware


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        check_ids(request)
        return await handler(request)
    except BrokerError as e:
        return error_json(e.status, e.code, e.detail, e.headers)
    except VaultError:
        # sealed data that does not open for its row: one line, no traceback, a typed answer
        log.warning("vault refused sealed data on %s %s", request.method, request.path)
        return error_json(500, "vault_error", "stored credentials could not be opened")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            e.status, "invalid_request"
        )
        return error_json(e.status, code, e.reason or "refused")
    except ConnectionResetError:
        raise  # the client went away: one line, not a traceback
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_json(500, "internal_error", "unexpected error")
