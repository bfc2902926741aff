"""Redaction for every log line of the platform layer.

Installed as the log-record factory, so it covers every logger (ours, python-telegram-bot's,
aiohttp's, httpx's) and every handler, including test capture: the message is formatted, then
anything that looks like an amount, an account or card number, an IBAN, a token or a key is
replaced, and tracebacks are formatted and redacted the same way. Allow-listing what may be
logged is impossible for free text, so this is the one deny-list in the system, and a test
feeds it every raw value of the mock bank's records.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from typing import Any

MASK = "[redacted]"
_PATTERNS = [
    # bot tokens "123456:AA…", bearer credentials, long hex/base64-ish secrets and JWTs
    re.compile(r"\b\d{3,12}:[A-Za-z0-9_-]{20,}"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.?[A-Za-z0-9_-]*"),
    re.compile(r"\b[A-Za-z0-9_+/=.-]*[0-9][A-Za-z0-9_+/=.-]*[A-Za-z][A-Za-z0-9_+/=.-]{18,}"),
    re.compile(r"(?i)\b(secret|password|passwd|token|key|credential)s?\b\s*[=:]\s*\S+"),
    # IBANs, grouped or not
    re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b"),
    # card and account numbers, sort codes, phone-like runs: 4+ digits, spaces/dashes allowed
    re.compile(r"\b\d(?:[ -]?\d){3,}\b"),
    # references and device or terminal ids: any word holding four or more digits
    re.compile(r"\b[\w-]*\d(?:[\w-]*?\d){3,}[\w-]*"),
    re.compile(r"\b(?=[A-Z0-9]*\d)[A-Z0-9]{8,}\b"),  # upper-case references like WISAF3DACFDEB
    re.compile(r"\b\d{2}-\d{2}-\d{2}\b"),
    # amounts: 12.34, 1,234.56, 1 234,56, with or without a currency sign or code
    re.compile(r"[£$€]?\s?-?\d{1,3}(?:[ ,.\u00a0\u202f]\d{3})*[.,]\d{1,2}\b"),
    re.compile(r"(?i)\b(?:gbp|usd|eur|pln|sar)\s?-?\d+(?:[.,]\d+)?"),
    re.compile(r"[£$€]\s?\d+"),
    # e-mail addresses and IPv4 addresses
    re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b"),
    re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"),
]


def redact(text: str) -> str:
    """``text`` with every value-looking token replaced by ``[redacted]``."""
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text


def _redacting(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not leak its arguments either
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return record

    make.chatbank_redacting = True  # type: ignore[attr-defined]
    return make


def install() -> None:
    """Redact every log record from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "chatbank_redacting", False):
        logging.setLogRecordFactory(_redacting(current))
