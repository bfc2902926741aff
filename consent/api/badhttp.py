"""Requests aiohttp cannot parse (a 10 KB request line or header, garbage on the port) are the
client's fault: aiohttp answers them 400 but logs an ERROR with a traceback. This filter turns
each into one WARNING line naming the peer and the kind of error, never the request's content
(a merchant filter or a cursor is the user's data)."""

from __future__ import annotations

import logging
import re

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"


class MalformedRequestFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        kind = _parse_error(record)
        if kind is not None:
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "refused a malformed request from %s: %s", (peer, kind)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


_HTTP_EXCEPTION = re.compile(r"aiohttp\.http_exceptions\.(\w+)")


def _parse_error(record: logging.LogRecord) -> str | None:
    """The name of the parse error behind ``record``, if it is one. In ``chatbank up`` the bot's
    redacting record factory has already turned the exception into ``exc_text``."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, HttpProcessingError):
        return type(exc).__name__
    found = _HTTP_EXCEPTION.search(record.exc_text or "")
    return found.group(1) if found else None


def install() -> None:
    """Attach the filter to aiohttp's server logger once per process."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, MalformedRequestFilter) for f in logger.filters):
        logger.addFilter(MalformedRequestFilter())
