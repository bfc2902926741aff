"""The outcome of an access check, with a machine-readable reason."""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
CONSENT_NOT_AUTHORIZED = "consent_not_authorized"
CONSENT_EXPIRED = "consent_expired"
SCOPE_NOT_CONSENTED = "scope_not_consented"
SCOPE_NOT_ALLOWED_BY_BANK = "scope_not_allowed_by_bank"
PURPOSE_NOT_PERMITTED = "purpose_not_permitted"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str

    @classmethod
    def allow(cls) -> Decision:
        return cls(True, OK)

    @classmethod
    def deny(cls, reason: str) -> Decision:
        return cls(False, reason)
