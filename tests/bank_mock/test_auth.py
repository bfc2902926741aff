"""Registration, the token endpoint, PKCE, consents and the approval pages."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from bank_mock.auth.permissions import KNOWN_PERMISSIONS, permission_problem
from bank_mock.auth.pkce import challenge_of, verify
from bank_mock.clock import FrozenClock
from tests.bank_mock import flow
from tests.bank_mock.obie import assert_obie

Client = TestClient[Any, Any]
CONSENTS = flow.AISP.format(bank="northwind") + "/account-access-consents"


async def _exchange(
    client: Client, reg: flow.Registered, code: str, verifier: str, redirect: str = flow.REDIRECT
) -> Any:
    return await client.post(
        "/banks/northwind/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "code_verifier": verifier,
        },
        headers=reg.basic(),
    )


async def test_registration_rejects_bad_metadata(bank_client: Client) -> None:
    for body in (
        {"client_name": "x", "redirect_uris": ["not a url"]},
        {"client_name": "", "redirect_uris": ["https://a.example/cb"]},
        {"client_name": "x", "redirect_uris": []},
        {
            "client_name": "x",
            "redirect_uris": ["https://a.example/cb"],
            "event_notification_url": "ftp://x",
        },
    ):
        resp = await bank_client.post("/banks/northwind/register", json=body)
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid_client_metadata"
    garbage = await bank_client.post("/banks/northwind/register", data=b"{nope")
    assert garbage.status == 400


async def test_the_token_endpoint_authenticates_the_client(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    wrong = flow.Registered("northwind", reg.client_id, "wrong-secret")
    resp = await bank_client.post(
        "/banks/northwind/token", data={"grant_type": "client_credentials"}, headers=wrong.basic()
    )
    assert resp.status == 401
    assert (await resp.json())["error"] == "invalid_client"
    form = await bank_client.post(
        "/banks/northwind/token",
        data={
            "grant_type": "client_credentials",
            "client_id": reg.client_id,
            "client_secret": reg.secret,
        },
    )
    assert form.status == 200
    unknown = await bank_client.post(
        "/banks/northwind/token", data={"grant_type": "password"}, headers=reg.basic()
    )
    assert (await unknown.json())["error"] == "unsupported_grant_type"
    json_body = await bank_client.post(
        "/banks/northwind/token", json={"grant_type": "client_credentials"}
    )
    assert json_body.status == 400


async def test_pkce_code_exchange_succeeds_once_with_the_right_verifier(
    bank_client: Client,
) -> None:
    reg = await flow.register(bank_client, "northwind")
    consent_id = await flow.create_consent(bank_client, reg)
    location, verifier = await flow.approve_in_browser(bank_client, reg, consent_id)
    assert location.query["state"] == "st-123"
    code = location.query["code"]
    bad = await _exchange(bank_client, reg, code, secrets.token_urlsafe(48))
    assert (await bad.json())["error"] == "invalid_grant"
    # the failed attempt consumed the code: codes are single use even when misused
    again = await _exchange(bank_client, reg, code, verifier)
    assert again.status == 400


async def test_a_code_is_bound_to_its_redirect_uri_client_and_lifetime(
    bank_client: Client, clock: FrozenClock
) -> None:
    reg = await flow.register(bank_client, "northwind")
    other = await flow.register(bank_client, "northwind")
    for case in ("redirect", "client", "expired"):
        consent_id = await flow.create_consent(bank_client, reg)
        location, verifier = await flow.approve_in_browser(bank_client, reg, consent_id)
        code = location.query["code"]
        if case == "redirect":
            resp = await _exchange(bank_client, reg, code, verifier, "https://tpp.example/other")
        elif case == "client":
            resp = await _exchange(bank_client, other, code, verifier)
        else:
            clock.advance(seconds=121)
            resp = await _exchange(bank_client, reg, code, verifier)
        assert resp.status == 400, case
        assert (await resp.json())["error"] == "invalid_grant", case


async def test_refresh_tokens_rotate_and_die_with_the_consent(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    refresh = {"grant_type": "refresh_token", "refresh_token": linked.refresh_token}
    first = await bank_client.post("/banks/northwind/token", data=refresh, headers=reg.basic())
    assert first.status == 200
    new = await first.json()
    assert new["refresh_token"] != linked.refresh_token
    reused = await bank_client.post("/banks/northwind/token", data=refresh, headers=reg.basic())
    assert reused.status == 400
    read = await bank_client.get(
        flow.AISP.format(bank="northwind") + "/accounts", headers=flow.bearer(new["access_token"])
    )
    assert read.status == 200
    cc = await flow.cc_token(bank_client, reg)
    await bank_client.delete(f"{CONSENTS}/{linked.consent_id}", headers=flow.bearer(cc))
    after = await bank_client.post(
        "/banks/northwind/token",
        data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"]},
        headers=reg.basic(),
    )
    assert after.status == 400


async def test_consent_responses_follow_the_obie_schema_and_lifecycle(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    cc = await flow.cc_token(bank_client, reg)
    created = await bank_client.post(
        CONSENTS,
        json={
            "Data": {
                "Permissions": flow.ALL_READ,
                "ExpirationDateTime": "2027-01-01T00:00:00+00:00",
            },
            "Risk": {},
        },
        headers=flow.bearer(cc),
    )
    body = await assert_obie(created, "POST")
    assert created.status == 201
    consent_id = (await created.json())["Data"]["ConsentId"]
    assert b"AwaitingAuthorisation" in body
    read = await bank_client.get(f"{CONSENTS}/{consent_id}", headers=flow.bearer(cc))
    await assert_obie(read)
    assert read.status == 200
    deleted = await bank_client.delete(f"{CONSENTS}/{consent_id}", headers=flow.bearer(cc))
    assert deleted.status == 204
    reread = await bank_client.get(f"{CONSENTS}/{consent_id}", headers=flow.bearer(cc))
    assert (await reread.json())["Data"]["Status"] == "Revoked"


async def test_consents_are_private_to_the_client_that_made_them(bank_client: Client) -> None:
    mine = await flow.register(bank_client, "northwind")
    theirs = await flow.register(bank_client, "northwind")
    consent_id = await flow.create_consent(bank_client, mine)
    other_cc = await flow.cc_token(bank_client, theirs)
    resp = await bank_client.get(f"{CONSENTS}/{consent_id}", headers=flow.bearer(other_cc))
    await assert_obie(resp)
    assert resp.status == 400
    assert (await resp.json())["Errors"][0]["ErrorCode"] == "UK.OBIE.Resource.NotFound"


async def test_invalid_consent_requests_get_obie_400s(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    cc = await flow.cc_token(bank_client, reg)
    bad_bodies: list[Any] = [
        {"Data": {"Permissions": []}, "Risk": {}},
        {"Data": {"Permissions": ["ReadTransactionsBasic"]}, "Risk": {}},
        {"Data": {"Permissions": ["ReadTransactionsCredits", "ReadAccountsBasic"]}, "Risk": {}},
        {"Data": {"Permissions": ["ReadEverything"]}, "Risk": {}},
        {
            "Data": {
                "Permissions": ["ReadBalances"],
                "ExpirationDateTime": "2020-01-01T00:00:00+00:00",
            },
            "Risk": {},
        },
        {"Data": {"Permissions": ["ReadBalances"], "ExpirationDateTime": "soon"}, "Risk": {}},
        {"Data": {"Permissions": ["ReadBalances"]}},
        [1, 2, 3],
    ]
    for body in bad_bodies:
        resp = await bank_client.post(CONSENTS, json=body, headers=flow.bearer(cc))
        await assert_obie(resp, "POST")
        assert resp.status == 400, body
    wrong_type = await bank_client.post(
        CONSENTS, data=b"x", headers={**flow.bearer(cc), "Content-Type": "text/plain"}
    )
    assert wrong_type.status == 415


async def test_the_approval_pages_escape_untrusted_text_and_never_redirect_to_unknown_uris(
    bank_client: Client,
) -> None:
    resp = await bank_client.post(
        "/banks/northwind/register",
        json={"client_name": "<script>alert(1)</script>", "redirect_uris": [flow.REDIRECT]},
    )
    body = await resp.json()
    reg = flow.Registered("northwind", body["client_id"], body["client_secret"])
    consent_id = await flow.create_consent(bank_client, reg)
    query = {
        "response_type": "code",
        "client_id": reg.client_id,
        "redirect_uri": "https://evil.example/steal",
        "code_challenge": challenge_of(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
        "consent_id": consent_id,
    }
    evil = await bank_client.get("/banks/northwind/authorize", params=query, allow_redirects=False)
    assert evil.status == 400
    assert "Location" not in evil.headers
    page = await bank_client.get(
        "/banks/northwind/authorize", params={**query, "redirect_uri": flow.REDIRECT}
    )
    html = await page.text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert page.headers["X-Frame-Options"] == "DENY"


async def test_wrong_passwords_are_refused_then_the_attempt_is_locked(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    consent_id = await flow.create_consent(bank_client, reg)
    query = {
        "response_type": "code",
        "client_id": reg.client_id,
        "redirect_uri": flow.REDIRECT,
        "code_challenge": challenge_of(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
        "consent_id": consent_id,
    }
    page = await bank_client.get("/banks/northwind/authorize", params=query)
    form = flow.parse_form(await page.text())
    statuses = []
    for _ in range(5):
        resp = await bank_client.post(
            form.actions[0],
            data={"request_id": form.fields["request_id"], "username": "demo1", "password": "nope"},
        )
        statuses.append(resp.status)
    assert statuses == [401, 401, 401, 401, 403]


async def test_rejecting_on_the_page_sends_access_denied_and_rejects_the_consent(
    bank_client: Client,
) -> None:
    reg = await flow.register(bank_client, "northwind")
    consent_id = await flow.create_consent(bank_client, reg)
    location, _ = await flow.approve_in_browser(bank_client, reg, consent_id, approve=False)
    assert location.query["error"] == "access_denied"
    assert location.query["state"] == "st-123"
    cc = await flow.cc_token(bank_client, reg)
    status = await bank_client.get(f"{CONSENTS}/{consent_id}", headers=flow.bearer(cc))
    assert (await status.json())["Data"]["Status"] == "Rejected"


async def test_the_dashboard_lists_and_revokes_a_consent(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    login = await bank_client.post(
        "/banks/northwind/dashboard/login", data={"username": "demo1", "password": "pass-1"}
    )
    html = await login.text()
    assert "Chatbank Broker" in html
    form = flow.parse_form(html)
    revoke = await bank_client.post(
        form.actions[0], data={"csrf": form.fields["csrf"], "consent_id": linked.consent_id}
    )
    assert "Access revoked" in await revoke.text()
    read = await bank_client.get(
        flow.AISP.format(bank="northwind") + "/accounts", headers=flow.bearer(linked.access_token)
    )
    assert read.status == 401
    forged = await bank_client.post(
        form.actions[0], data={"csrf": "forged", "consent_id": linked.consent_id}
    )
    assert forged.status == 403


_TX = ["ReadTransactionsBasic", "ReadTransactionsDetail"]
_DIR = ["ReadTransactionsCredits", "ReadTransactionsDebits"]


def _oracle(perms: list[str]) -> bool:
    """An independent statement of the profile's rules."""
    if not perms or len(perms) != len(set(perms)) or any(p not in KNOWN_PERMISSIONS for p in perms):
        return False
    has_shape = any(p in perms for p in _TX)
    has_direction = any(p in perms for p in _DIR)
    return has_shape == has_direction


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*sorted(KNOWN_PERMISSIONS), "ReadEverything"]), max_size=8))
def test_permission_lists_are_accepted_exactly_when_the_profile_rules_hold(
    perms: list[str],
) -> None:
    assert (permission_problem(perms) is None) == _oracle(perms)


@settings(max_examples=100, deadline=None)
@given(
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~",
        min_size=43,
        max_size=128,
    )
)
def test_a_verifier_matches_only_its_own_challenge(verifier: str) -> None:
    assert verify(verifier, challenge_of(verifier))
    assert not verify(
        verifier + "x" if len(verifier) < 128 else verifier[:-1], challenge_of(verifier)
    )
