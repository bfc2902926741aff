"""OBIE-style errors: every failure is an ``OBErrorResponse1`` body with a fitting 4xx/5xx.

Views raise :class:`BankError`; one middleware turns it (and aiohttp's own HTTP errors, and any
unexpected exception) into JSON, so nothing ever answers with a traceback or an HTML error page.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

log = logging.getLogger(__name__)

_STATUS_TEXT = {
    400: "400 BadRequest",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 NotFound",
    405: "405 MethodNotAllowed",
    406: "406 NotAcceptable",
    409: "409 Conflict",
    413: "413 PayloadTooLarge",
    415: "415 UnsupportedMediaType",
    429: "429 TooManyRequests",
    500: "500 InternalServerError",
    502: "502 BadGateway",
    503: "503 ServiceUnavailable",
    504: "504 GatewayTimeout",
}

_DEFAULT_CODE = {
    400: "UK.OBIE.Field.Invalid",
    401: "UK.OBIE.Header.Invalid",
    403: "UK.OBIE.Resource.InvalidConsentStatus",
    404: "UK.OBIE.Resource.NotFound",
    405: "UK.OBIE.Unsupported.Method",
    406: "UK.OBIE.Header.Invalid",
    413: "UK.OBIE.Field.Invalid",
    415: "UK.OBIE.Header.Invalid",
    429: "UK.OBIE.Rules.ResourceThrottled",
}


class BankError(Exception):
    """A request the bank refuses, with an OBIE error code and the field it concerns."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        path: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _DEFAULT_CODE.get(status, "UK.OBIE.UnexpectedError")
        self.path = path
        self.headers = headers or {}


async def read_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """The request's form fields; a body that does not parse as its content type says is a 400.

    aiohttp raises ``ValueError`` for, say, ``multipart/form-data`` without a boundary; that is
    the client's mistake, so it must not reach the middleware's 500 branch.
    """
    try:
        return await request.post()
    except ValueError as e:
        raise BankError(400, "The form body does not parse as its Content-Type says") from e


class OAuthError(Exception):
    """An RFC 6749 error answer: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> web.Response:
        headers = {"Cache-Control": "no-store"}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="bank"'
        return web.json_response(
            {"error": self.error, "error_description": self.description},
            status=self.status,
            headers=headers,
        )


def error_body(status: int, message: str, code: str, path: str | None = None) -> dict[str, Any]:
    """An ``OBErrorResponse1`` document."""
    error: dict[str, Any] = {"ErrorCode": code, "Message": message[:500]}
    if path:
        error["Path"] = path
    return {
        "Code": _STATUS_TEXT.get(status, f"{status} Error"),
        "Id": uuid.uuid4().hex[:32],
        "Message": message[:500],
        "Errors": [error],
    }


def error_response(error: BankError) -> web.Response:
    return web.json_response(
        error_body(error.status, error.message, error.code, error.path),
        status=error.status,
        headers=error.headers,
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to an OBIE error body; never leak a traceback."""
    try:
        return await handler(request)
    except BankError as e:
        return error_response(e)
    except OAuthError as e:
        return e.response()
    except web.HTTPRedirection:
        raise
    except web.HTTPException as e:
        if e.status < 400:
            raise
        message = {
            404: "Resource not found",
            405: "Method not allowed",
            413: "Request body too large",
        }.get(e.status, e.reason or "Request refused")
        return error_response(BankError(e.status, message, headers=_allow_header(e)))
    except ConnectionResetError:
        raise  # the client went away: one line from ops.metrics, not a traceback
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(BankError(500, "Unexpected error", code="UK.OBIE.UnexpectedError"))


def _allow_header(e: web.HTTPException) -> dict[str, str]:
    allow = e.headers.get("Allow")
    return {"Allow": allow} if allow else {}
