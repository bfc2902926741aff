"""Opaque identifiers the platform holds instead of the bank's own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def opaque_id(secret: bytes, *parts: str) -> str:
    """A stable, one-way id for ``parts`` (HMAC-SHA256, 22 url-safe characters)."""
    mac = hmac.new(secret, "\x1f".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode()


def new_handle(prefix: str = "acc") -> str:
    """A random handle such as ``acc_3kT9…`` that reveals nothing about the account."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


def alert_handle(secret: bytes, bank_id: str, bank_alert_id: str, consent_id: str) -> str:
    """The platform's stable, opaque id of a bank's fraud alert as one consent was told of it
    (``alt_…``): two consents alerted of the same bank alert get unrelated handles, so one
    subject's handle names nothing under another's."""
    return f"alt_{opaque_id(secret, 'fraud-alert', bank_id, bank_alert_id, consent_id)}"
