"""Drive a mock bank the way a third party and a customer would, for the tests."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

from bank_mock.auth.pkce import challenge_of

REDIRECT = "https://tpp.example/callback"
AISP = "/banks/{bank}/open-banking/v3.1/aisp"
ALL_READ = [
    "ReadAccountsDetail",
    "ReadBalances",
    "ReadTransactionsDetail",
    "ReadTransactionsCredits",
    "ReadTransactionsDebits",
]


@dataclass
class Registered:
    bank: str
    client_id: str
    secret: str

    def basic(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


class FormParser(HTMLParser):
    """Collects hidden inputs, checkboxes and the form actions of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.checkboxes: list[str] = []
        self.actions: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.actions.append(a.get("action", ""))
        if tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        if tag == "input" and a.get("type") == "checkbox":
            self.checkboxes.append(a.get("value", ""))


def parse_form(html: str) -> FormParser:
    p = FormParser()
    p.feed(html)
    return p


async def register(
    client: TestClient[Any, Any], bank: str, events_url: str | None = None
) -> Registered:
    resp = await client.post(
        f"/banks/{bank}/register",
        json={
            "client_name": "Chatbank Broker",
            "redirect_uris": [REDIRECT],
            "event_notification_url": events_url,
        },
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return Registered(bank, body["client_id"], body["client_secret"])


async def cc_token(client: TestClient[Any, Any], reg: Registered) -> str:
    resp = await client.post(
        f"/banks/{reg.bank}/token",
        data={"grant_type": "client_credentials", "scope": "accounts"},
        headers=reg.basic(),
    )
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["access_token"])


async def create_consent(
    client: TestClient[Any, Any],
    reg: Registered,
    permissions: list[str] | None = None,
    **extra: str,
) -> str:
    token = await cc_token(client, reg)
    resp = await client.post(
        AISP.format(bank=reg.bank) + "/account-access-consents",
        json={"Data": {"Permissions": permissions or ALL_READ, **extra}, "Risk": {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["Data"]["ConsentId"])


@dataclass
class Linked:
    consent_id: str
    access_token: str
    refresh_token: str
    verifier: str


async def approve_in_browser(
    client: TestClient[Any, Any],
    reg: Registered,
    consent_id: str,
    *,
    username: str = "demo1",
    password: str = "pass-1",
    scope: str = "openid accounts",
    approve: bool = True,
    verifier: str | None = None,
) -> tuple[URL, str]:
    """Walk the login and consent pages; returns the redirect URL and the PKCE verifier."""
    verifier = verifier or secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": reg.client_id,
        "redirect_uri": REDIRECT,
        "state": "st-123",
        "code_challenge": challenge_of(verifier),
        "code_challenge_method": "S256",
        "consent_id": consent_id,
        "scope": scope,
    }
    page = await client.get(f"/banks/{reg.bank}/authorize", params=query)
    assert page.status == 200, await page.text()
    login = parse_form(await page.text())
    consent_page = await client.post(
        login.actions[0],
        data={"request_id": login.fields["request_id"], "username": username, "password": password},
    )
    assert consent_page.status == 200, await consent_page.text()
    form = parse_form(await consent_page.text())
    data: list[tuple[str, str]] = [("request_id", form.fields["request_id"])]
    data += [("account_id", a) for a in form.checkboxes]
    data.append(("decision", "approve" if approve else "reject"))
    done = await client.post(form.actions[0], data=data, allow_redirects=False)
    assert done.status == 302, await done.text()
    return URL(done.headers["Location"]), verifier


async def link(
    client: TestClient[Any, Any],
    reg: Registered,
    permissions: list[str] | None = None,
    scope: str = "openid accounts",
) -> Linked:
    """Create a consent, approve it through the pages and exchange the code with PKCE."""
    consent_id = await create_consent(client, reg, permissions)
    location, verifier = await approve_in_browser(client, reg, consent_id, scope=scope)
    code = location.query["code"]
    resp = await client.post(
        f"/banks/{reg.bank}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        headers=reg.basic(),
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return Linked(consent_id, body["access_token"], body["refresh_token"], verifier)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


MASKED = re.compile(r"^\*{12}\d{4}$")
