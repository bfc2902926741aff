"""Webhook bodies signed with HTTP Message Signatures (RFC 9421), HMAC-SHA256 with the client's
webhook secret, covering the method, target URI, content type and Content-Digest, with
``created`` and a ``nonce`` so the receiver can refuse stale or replayed deliveries."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

COVERED = ("@method", "@target-uri", "content-type", "content-digest")
TAG = "chatbank-webhook"


@dataclass
class OutgoingRequest:
    """The minimal message interface the signer reads and writes."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


def sign_webhook(
    url: str, body: bytes, *, key_id: str, secret: bytes, now: datetime
) -> dict[str, str]:
    """The headers to send with ``body`` to ``url``."""
    message = OutgoingRequest("POST", url, {"Content-Type": "application/json"})
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: secret}),
    )
    signer.sign(
        message,
        key_id=key_id,
        created=now,
        nonce=secrets.token_urlsafe(16),
        tag=TAG,
        covered_component_ids=COVERED,
        body=body,
    )
    return message.headers
