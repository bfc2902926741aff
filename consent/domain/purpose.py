"""Purpose limitation: only the chat service is ever served."""

from __future__ import annotations

from consent.domain import decisions
from consent.domain.decisions import Decision
from consent.domain.policy import BankPolicy, PlatformContract

CHAT_SERVICE = "chat-service"
REFUSED_ALWAYS = frozenset(
    {"advertising", "marketing", "analytics", "profiling", "cross-selling", "sale"}
)


def check_purpose(purpose: str, policy: BankPolicy | None, contract: PlatformContract) -> Decision:
    """Allow ``chat-service`` where the contract and the bank allow it; refuse everything else."""
    if purpose in REFUSED_ALWAYS or purpose != CHAT_SERVICE or purpose not in contract.purposes:
        return Decision.deny(decisions.PURPOSE_NOT_PERMITTED)
    if policy is not None and purpose in policy.forbidden_purposes:
        return Decision.deny(decisions.PURPOSE_NOT_PERMITTED)
    return Decision.allow()
