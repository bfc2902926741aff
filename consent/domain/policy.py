"""Per-bank data-sharing policies (one YAML file per bank) and the platform contract.

The broker serves the intersection of what the user consented to, what the bank allows through a
chat platform, and what the platform contract allows.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from consent.domain.scopes import Scope
from consent.domain.views import VIEW_FIELDS

MAX_DURATION_DAYS = 365  # 12 CFR 1033: reauthorization at least yearly


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file."""


def _check_view_fields(value: dict[str, list[str]]) -> dict[str, list[str]]:
    for view, fields in value.items():
        if view not in VIEW_FIELDS:
            raise ValueError(f"unknown view {view!r}")
        unknown = set(fields) - VIEW_FIELDS[view]
        if unknown:
            raise ValueError(f"{view}: fields outside the allow-list: {sorted(unknown)}")
    return value


class BankPolicy(BaseModel):
    """What one bank lets a chat platform have."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bank_id: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    display_name: str = Field(min_length=1, max_length=80)
    allowed_scopes: frozenset[Scope]
    max_duration_days: int = Field(ge=1, le=MAX_DURATION_DAYS)
    view_fields: dict[str, list[str]]
    forbidden_purposes: frozenset[str] = frozenset()

    _views = field_validator("view_fields")(_check_view_fields)


class PlatformContract(BaseModel):
    """What the chat platform signed up for (the same for every bank)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_scopes: frozenset[Scope] = frozenset(Scope)
    view_fields: dict[str, list[str]] = Field(
        default_factory=lambda: {k: sorted(v) for k, v in VIEW_FIELDS.items()}
    )
    purposes: frozenset[str] = frozenset({"chat-service"})

    _views = field_validator("view_fields")(_check_view_fields)


def load_policies(directory: Path) -> dict[str, BankPolicy]:
    """Every ``*.yaml`` policy in ``directory``, validated; ``PolicyError`` names a bad file."""
    policies: dict[str, BankPolicy] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            policy = BankPolicy.model_validate(raw)
        except (yaml.YAMLError, ValidationError) as e:
            raise PolicyError(f"{path.name}: {e}") from e
        if policy.bank_id != path.stem:
            raise PolicyError(
                f"{path.name}: bank_id {policy.bank_id!r} does not match the file name"
            )
        policies[policy.bank_id] = policy
    if not policies:
        raise PolicyError(f"no policy files in {directory}")
    return policies


def allowed_fields(view: str, policy: BankPolicy, contract: PlatformContract) -> frozenset[str]:
    """Fields of ``view`` that the allow-list, the bank and the platform contract all permit."""
    return (
        VIEW_FIELDS[view]
        & set(policy.view_fields.get(view, ()))
        & set(contract.view_fields.get(view, ()))
    )


def effective_scopes(
    requested: frozenset[Scope], policy: BankPolicy, contract: PlatformContract
) -> frozenset[Scope]:
    """The scopes that can actually be granted."""
    return requested & policy.allowed_scopes & contract.allowed_scopes
