"""The outcome of an access check, with a machine-readable reason."""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
UNAUTHENTICATED = "unauthenticated"
# a resource named in the request does not exist, or belongs to another platform client: the
# caller gets the same 404 for both; only the security log tells them apart
UNKNOWN_RESOURCE = "unknown_resource"
OTHER_CLIENTS_RESOURCE = "other_clients_resource"
PURPOSE_NOT_PERMITTED = "purpose_not_permitted"
CONSENT_NOT_AUTHORIZED = "consent_not_authorized"
CONSENT_EXPIRED = "consent_expired"
SCOPE_NOT_CONSENTED = "scope_not_consented"
SCOPE_NOT_ALLOWED_BY_BANK = "scope_not_allowed_by_bank"
DURATION_NOT_ALLOWED_BY_BANK = "duration_not_allowed_by_bank"
RATE_LIMITED = "rate_limited"
CLIENT_RATE_LIMITED = "client_rate_limited"

PROBES = frozenset({UNKNOWN_RESOURCE, OTHER_CLIENTS_RESOURCE})


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

    @property
    def is_probe(self) -> bool:
        """A refusal that must look exactly like "no such resource" to the caller."""
        return self.reason in PROBES
