"""PKCE (RFC 7636), S256 only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def challenge_of(verifier: str) -> str:
    """The S256 code challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.match(challenge))


def verify(verifier: str, challenge: str) -> bool:
    """Does ``verifier`` match the S256 ``challenge``? (Constant-time compare.)"""
    if not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(challenge_of(verifier), challenge)
