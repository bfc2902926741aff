"""The one authorization decision, as a pure function: its order and its invariants."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from consent.domain import decisions
from consent.domain.access import AccessRequest, Action, Owned, decide
from consent.domain.consent import Consent, ConsentStatus
from consent.domain.policy import PlatformContract, load_policies
from consent.domain.scopes import Scope

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
POLICIES = load_policies(Path("consent/policies"))
CONTRACT = PlatformContract()
ME, THEM = "pc_me", "pc_them"
CONSENT = Consent(
    consent_id="con_1",
    subject_id="sub_1",
    client_id=ME,
    bank_id="northwind",
    scopes=frozenset({Scope.BALANCES, Scope.TRANSACTIONS, Scope.FRAUD_ALERTS}),
    purpose="chat-service",
    status=ConsentStatus.AUTHORIZED,
    created_at=NOW - timedelta(days=1),
    expires_at=NOW + timedelta(days=89),
    authorized_at=NOW - timedelta(days=1),
)
TX = AccessRequest(
    action=Action.READ_TRANSACTIONS,
    client_id=ME,
    purpose="chat-service",
    resources=(Owned(ME), Owned(ME)),
    consent=CONSENT,
    scopes=frozenset({Scope.TRANSACTIONS}),
    policy=POLICIES["northwind"],
)


def _reason(req: AccessRequest, now: datetime = NOW) -> str:
    return decide(req, CONTRACT, now).reason


def test_a_read_under_a_live_consent_in_scope_is_allowed() -> None:
    assert decide(TX, CONTRACT, NOW).allowed


def test_each_refusal_has_its_reason() -> None:
    assert _reason(replace(TX, client_id=None)) == decisions.UNAUTHENTICATED
    assert _reason(replace(TX, resources=(Owned(None),))) == decisions.UNKNOWN_RESOURCE
    assert _reason(replace(TX, resources=(Owned(THEM),))) == decisions.OTHER_CLIENTS_RESOURCE
    # a consent of another of my own subjects is simply not there under this subject
    assert (
        _reason(replace(TX, resources=(Owned(ME), Owned(ME, under_subject=False))))
        == decisions.UNKNOWN_RESOURCE
    )
    assert _reason(replace(TX, purpose="advertising")) == decisions.PURPOSE_NOT_PERMITTED
    assert _reason(replace(TX, purpose="")) == decisions.PURPOSE_NOT_PERMITTED
    revoked = replace(CONSENT, status=ConsentStatus.REVOKED)
    assert _reason(replace(TX, consent=revoked)) == decisions.CONSENT_NOT_AUTHORIZED
    assert _reason(TX, CONSENT.expires_at) == decisions.CONSENT_EXPIRED
    assert (
        _reason(replace(TX, scopes=frozenset({Scope.CARD_CONTROLS})))
        == decisions.SCOPE_NOT_CONSENTED
    )
    strict = POLICIES["northwind"].model_copy(update={"allowed_scopes": frozenset()})
    assert _reason(replace(TX, policy=strict)) == decisions.SCOPE_NOT_ALLOWED_BY_BANK
    assert _reason(replace(TX, policy=None)) == decisions.SCOPE_NOT_ALLOWED_BY_BANK
    assert _reason(replace(TX, consent=None)) == decisions.UNKNOWN_RESOURCE


def test_an_alert_answer_on_an_expired_consent_is_refused() -> None:
    answer = replace(TX, action=Action.ALERT_ANSWER, scopes=frozenset({Scope.FRAUD_ALERTS}))
    assert decide(answer, CONTRACT, NOW).allowed
    later = CONSENT.expires_at + timedelta(seconds=1)
    assert _reason(answer, later) == decisions.CONSENT_EXPIRED


def test_a_new_consent_gets_no_more_than_the_bank_allows() -> None:
    create = AccessRequest(
        action=Action.CONSENT_CREATE,
        client_id=ME,
        purpose="chat-service",
        resources=(Owned(ME),),
        scopes=frozenset({Scope.BALANCES}),
        policy=POLICIES["wisla"],
    )
    assert decide(create, CONTRACT, NOW).allowed
    assert (
        _reason(replace(create, scopes=frozenset({Scope.TRANSACTIONS})))
        == decisions.SCOPE_NOT_ALLOWED_BY_BANK
    )
    assert _reason(replace(create, duration_days=31)) == decisions.DURATION_NOT_ALLOWED_BY_BANK
    assert decide(replace(create, duration_days=30), CONTRACT, NOW).allowed


def test_the_bank_list_needs_a_credential_and_the_chat_service_purpose() -> None:
    banks = AccessRequest(action=Action.BANKS_LIST, client_id=ME, purpose="chat-service")
    assert decide(banks, CONTRACT, NOW).allowed
    assert _reason(replace(banks, purpose="advertising")) == decisions.PURPOSE_NOT_PERMITTED
    assert _reason(replace(banks, client_id=None)) == decisions.UNAUTHENTICATED


owners = st.sampled_from([ME, THEM, None])
requests = st.builds(
    AccessRequest,
    action=st.sampled_from(list(Action)),
    client_id=st.sampled_from([ME, None]),
    purpose=st.sampled_from(["chat-service", "advertising", "", "analytics", "Chat-Service"]),
    resources=st.lists(st.builds(Owned, owners, st.booleans()), max_size=2).map(tuple),
    consent=st.sampled_from([None, CONSENT, replace(CONSENT, status=ConsentStatus.EXPIRED)]),
    scopes=st.frozensets(st.sampled_from(list(Scope))),
    policy=st.sampled_from([None, *POLICIES.values()]),
    duration_days=st.one_of(st.none(), st.integers(1, 400)),
)


@settings(max_examples=300, deadline=None)
@given(requests, st.integers(-3, 400))
def test_nothing_is_allowed_without_a_credential_the_purpose_and_ownership(
    req: AccessRequest, days: int
) -> None:
    d = decide(req, CONTRACT, NOW + timedelta(days=days))
    if d.allowed:
        assert req.client_id == ME
        assert req.purpose == "chat-service"
        assert all(r.owner == ME and r.under_subject for r in req.resources)
    if req.client_id is None:
        assert d.reason == decisions.UNAUTHENTICATED
    elif any(r.owner != ME or not r.under_subject for r in req.resources):
        # whatever else is wrong, a resource that is not the caller's is just "not found"
        assert d.is_probe


@settings(max_examples=200, deadline=None)
@given(
    requests,
    st.sampled_from([Action.READ_TRANSACTIONS, Action.ALERT_ANSWER]),
    st.sampled_from(sorted(set(ConsentStatus) - {ConsentStatus.AUTHORIZED})),
)
def test_an_action_under_a_consent_that_is_not_authorized_is_never_allowed(
    req: AccessRequest, action: Action, status: ConsentStatus
) -> None:
    policy = req.policy or POLICIES["northwind"]
    ended = replace(req, action=action, consent=replace(CONSENT, status=status), policy=policy)
    assert not decide(ended, CONTRACT, NOW).allowed
