"""Requests aiohttp cannot parse (a 10 KB request line or header, garbage on the port) are the
client's fault: aiohttp answers them 400 but logs an ERROR with a traceback. This filter turns
each into one WARNING line naming the peer and the kind of error, never the request's content
(a merchant filter or a cursor is the user's data)."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"


class MalformedRequestFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "refused a malformed request from %s: %s (%s)"
            record.args = (peer, type(exc).__name__, exc.code)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def install() -> None:
    """Attach the filter to aiohttp's server logger once per process."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, MalformedRequestFilter) for f in logger.filters):
        logger.addFilter(MalformedRequestFilter())
