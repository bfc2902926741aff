"""Consent lifecycle, scope mapping, policies and purpose limitation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from bank_mock.auth.permissions import permission_problem
from consent.domain import decisions
from consent.domain.consent import (
    Consent,
    ConsentStatus,
    InvalidTransition,
    InvalidTransitionError,
    authorize,
    can_read,
    expire,
    expiry_for,
    needs_renewal_notice,
    reject,
    revoke,
)
from consent.domain.policy import (
    PlatformContract,
    PolicyError,
    allowed_fields,
    effective_scopes,
    load_policies,
)
from consent.domain.purpose import check_purpose
from consent.domain.scopes import (
    Scope,
    oauth_scopes,
    obie_permissions,
    parse_scopes,
    scopes_from_text,
    scopes_to_text,
)
from consent.store.tables import ScopeSet

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
POLICIES = load_policies(Path(__file__).resolve().parents[2] / "consent" / "policies")
CONTRACT = PlatformContract()


def fresh(scopes: frozenset[Scope] = frozenset(Scope), days: int = 90) -> Consent:
    return Consent(
        "c1",
        "s1",
        "p1",
        "northwind",
        scopes,
        "chat-service",
        ConsentStatus.AWAITING_AUTHORIZATION,
        NOW,
        NOW + timedelta(days=days),
    )


def test_an_authorized_consent_can_read_what_it_was_granted() -> None:
    c = authorize(fresh(frozenset({Scope.BALANCES})), NOW)
    assert can_read(c, Scope.BALANCES, POLICIES["northwind"], NOW).allowed
    assert (
        can_read(c, Scope.TRANSACTIONS, POLICIES["northwind"], NOW).reason
        == decisions.SCOPE_NOT_CONSENTED
    )


def test_revoked_rejected_and_expired_consents_cannot_read() -> None:
    policy = POLICIES["northwind"]
    assert can_read(fresh(), Scope.BALANCES, policy, NOW).reason == decisions.CONSENT_NOT_AUTHORIZED
    assert (
        can_read(revoke(authorize(fresh(), NOW), NOW), Scope.BALANCES, policy, NOW).reason
        == decisions.CONSENT_NOT_AUTHORIZED
    )
    assert (
        can_read(reject(fresh(), NOW), Scope.BALANCES, policy, NOW).reason
        == decisions.CONSENT_NOT_AUTHORIZED
    )
    later = NOW + timedelta(days=91)
    assert (
        can_read(authorize(fresh(), NOW), Scope.BALANCES, policy, later).reason
        == decisions.CONSENT_EXPIRED
    )


def test_the_strict_bank_refuses_transactions_even_when_the_user_consented() -> None:
    c = authorize(fresh(frozenset({Scope.TRANSACTIONS})), NOW)
    assert (
        can_read(c, Scope.TRANSACTIONS, POLICIES["wisla"], NOW).reason
        == decisions.SCOPE_NOT_ALLOWED_BY_BANK
    )
    assert Scope.TRANSACTIONS not in effective_scopes(frozenset(Scope), POLICIES["wisla"], CONTRACT)
    assert "transaction" not in POLICIES["wisla"].view_fields


@pytest.mark.parametrize(
    ("start", "step"),
    [
        (ConsentStatus.REJECTED, authorize),
        (ConsentStatus.REVOKED, authorize),
        (ConsentStatus.EXPIRED, authorize),
        (ConsentStatus.REJECTED, revoke),
        (ConsentStatus.AUTHORIZED, reject),
        (ConsentStatus.AUTHORIZED, authorize),
    ],
)
def test_illegal_transitions_are_refused(start: ConsentStatus, step: object) -> None:
    from dataclasses import replace

    c = replace(fresh(), status=start)
    with pytest.raises(InvalidTransitionError):
        step(c, NOW)  # type: ignore[operator]


def test_a_consent_cannot_be_authorized_or_expired_at_the_wrong_time() -> None:
    with pytest.raises(InvalidTransitionError):
        authorize(fresh(days=1), NOW + timedelta(days=2))
    with pytest.raises(InvalidTransition):
        expire(authorize(fresh(), NOW), NOW)
    assert expire(authorize(fresh(), NOW), NOW + timedelta(days=90)).status == ConsentStatus.EXPIRED


_STEPS = st.lists(st.sampled_from(["authorize", "reject", "revoke", "expire"]), max_size=8)


@settings(max_examples=300, deadline=None)
@given(_STEPS, st.lists(st.integers(min_value=0, max_value=200), min_size=8, max_size=8))
def test_an_ended_consent_never_becomes_authorized_again(
    steps: list[str], day_offsets: list[int]
) -> None:
    funcs = {"authorize": authorize, "reject": reject, "revoke": revoke, "expire": expire}
    c = fresh()
    ended = False
    for name, offset in zip(steps, day_offsets, strict=False):
        try:
            c = funcs[name](c, NOW + timedelta(days=offset))
        except InvalidTransitionError:
            continue
        if c.status in (ConsentStatus.REJECTED, ConsentStatus.REVOKED, ConsentStatus.EXPIRED):
            ended = True
        if ended:
            assert c.status != ConsentStatus.AUTHORIZED


def test_the_renewal_notice_window_is_the_last_seven_days() -> None:
    c = authorize(fresh(days=30), NOW)
    assert not needs_renewal_notice(c, NOW + timedelta(days=22))
    assert needs_renewal_notice(c, NOW + timedelta(days=23, hours=1))
    assert not needs_renewal_notice(c, NOW + timedelta(days=31))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(POLICIES)),
    st.one_of(st.none(), st.integers(min_value=-5, max_value=500)),
)
def test_expiry_never_exceeds_the_bank_maximum_nor_a_year(bank: str, days: int | None) -> None:
    policy = POLICIES[bank]
    try:
        end = expiry_for(NOW, days, policy)
    except ValueError:
        assert days is not None
        assert days < 1 or days > policy.max_duration_days
        return
    assert NOW < end <= NOW + timedelta(days=policy.max_duration_days) <= NOW + timedelta(days=365)
    if days is None:
        assert end == NOW + timedelta(days=min(90, policy.max_duration_days))


@settings(max_examples=100, deadline=None)
@given(st.sets(st.sampled_from(list(Scope)), min_size=1))
def test_scopes_map_to_permissions_the_bank_accepts(scopes: set[Scope]) -> None:
    perms = obie_permissions(scopes)
    assert permission_problem(perms) is None
    assert ("cards" in oauth_scopes(scopes)) == (Scope.CARD_CONTROLS in scopes)


def test_scope_names_are_parsed_strictly() -> None:
    assert parse_scopes(["balances", "fraud_alerts"]) == {Scope.BALANCES, Scope.FRAUD_ALERTS}
    for bad in ([], ["everything"]):
        with pytest.raises(ValueError, match="scope"):
            parse_scopes(bad)


def test_only_the_chat_service_purpose_is_served() -> None:
    policy = POLICIES["northwind"]
    assert check_purpose("chat-service", policy, CONTRACT).allowed
    for purpose in (
        "advertising",
        "marketing",
        "analytics",
        "profiling",
        "",
        "Chat-Service",
        "research",
    ):
        assert check_purpose(purpose, policy, CONTRACT).reason == decisions.PURPOSE_NOT_PERMITTED


def test_allowed_fields_are_the_intersection_of_allow_list_bank_and_contract() -> None:
    assert "card_last4" not in allowed_fields("transaction", POLICIES["nakheel"], CONTRACT)
    assert "card_last4" in allowed_fields("transaction", POLICIES["northwind"], CONTRACT)
    assert allowed_fields("transaction", POLICIES["wisla"], CONTRACT) == frozenset()


_BASE = {
    "bank_id": "bad",
    "display_name": "X",
    "allowed_scopes": ["balances"],
    "max_duration_days": 30,
    "view_fields": {},
}


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("other.yaml", {}, "does not match"),
        ("bad.yaml", {"max_duration_days": 400}, "365"),
        ("bad.yaml", {"allowed_scopes": ["everything"]}, "allowed_scopes"),
        ("bad.yaml", {"view_fields": {"balance": ["iban"]}}, "iban"),
        ("bad.yaml", {"surprise": True}, "surprise"),
    ],
)
def test_invalid_policy_files_are_refused_naming_the_file(
    tmp_path: Path, name: str, changes: dict[str, object], message: str
) -> None:
    (tmp_path / name).write_text(yaml.safe_dump({**_BASE, **changes}))
    with pytest.raises(PolicyError, match=message):
        load_policies(tmp_path)


def test_a_policy_file_that_is_not_yaml_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("bank_id: [unclosed\n")
    with pytest.raises(PolicyError, match=r"broken\.yaml"):
        load_policies(tmp_path)


@given(st.frozensets(st.sampled_from(list(Scope))))
def test_scopes_survive_their_stored_form(scopes: frozenset[Scope]) -> None:
    text = scopes_to_text(scopes)
    assert scopes_from_text(text) == scopes
    assert text == ",".join(sorted(s.value for s in scopes))
    column = ScopeSet()
    dialect = sqlite.dialect()
    assert column.process_result_value(column.process_bind_param(scopes, dialect), dialect) == (
        scopes
    )
