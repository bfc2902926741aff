"""One middleware maps every failure to ``{"error": code, "detail": ...}``; no tracebacks leak."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from consent.service.errors import BrokerError
from consent.vault.keyring import VaultError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_json(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
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
        raise  # the client went away: one line from ops.metrics, not a traceback
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_json(500, "internal_error", "unexpected error")
