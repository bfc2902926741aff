"""The bank's side of "talk to a person": the app's API, the agent console, business hours,
data-loss prevention and a restart."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from bank_mock import dlp
from bank_mock.app import create_app
from bank_mock.clock import FrozenClock
from bank_mock.identifiers import iban, luhn_check_digit
from bank_mock.keys import BANKS, EVENTS
from bank_mock.models import Consent
from bank_mock.settings import BankSettings
from bank_mock.state import BankState
from tests.bank_mock import flow
from tests.bank_mock.conftest import TODAY, AiohttpClient
from tests.bank_mock.test_dashboard_events import RecordingSink

PAN = "4539578763621486"  # Luhn-valid


class Payloads(RecordingSink):
    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[dict[str, Any]] = []

    def support_event(self, bank: BankState, consent: Consent, payload: dict[str, Any]) -> None:
        self.payloads.append(payload)


async def _linked(client: TestClient[Any, Any], scope: str = "openid accounts support") -> str:
    reg = await flow.register(client, "northwind")
    return (await flow.link(client, reg, scope=scope)).access_token


async def _say(client: TestClient[Any, Any], token: str, text: str, **kw: Any) -> Any:
    return await client.post(
        "/banks/northwind/support/v1/messages",
        json={"Text": text, **kw},
        headers=flow.bearer(token),
    )


async def _staff(client: TestClient[Any, Any], username: str = "agent1") -> None:
    resp = await client.post(
        "/banks/northwind/agent/login",
        data={"username": username, "password": "agent-demo"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_masking_cards_ibans_and_account_numbers() -> None:
    out = dlp.mask(f"card {PAN}, spaced 4539 5787 6362 1486, iban GB82 WEST 1234 5698 7654 32")
    assert PAN not in out.text and "4539 5787" not in out.text and "WEST 1234" not in out.text
    assert out.text.count("•••• 1486") == 2 and "•••• 5432" in out.text
    assert out.found == (dlp.IBAN, dlp.CARD, dlp.CARD)
    account = dlp.mask("your account 12-34-56 87654321 and 31926819")
    assert account.text == "your account •••• 4321 and •••• 6819"
    kept = "£1,250.00 on 2026-11-20, call 0800 123 4567, card ending 1486, ref 1234567"
    assert dlp.mask(kept).text == kept and not dlp.mask(kept).changed
    assert not dlp.mask("4539578763621487").changed  # 16 digits, not Luhn-valid: no card


@given(
    body=st.text(alphabet="0123456789", min_size=12, max_size=18),
    sep=st.sampled_from(["", " ", "-"]),
    before=st.text(alphabet="abc xyz,.", max_size=20),
    after=st.text(alphabet="abc xyz,.", max_size=20),
)
def test_no_luhn_valid_card_number_survives_masking(
    body: str, sep: str, before: str, after: str
) -> None:
    pan = body + luhn_check_digit(body)
    grouped = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    out = dlp.mask(f"{before} {grouped} {after}")
    assert not dlp.has_card_number(out.text)
    assert pan[-4:] in out.text and dlp.CARD in out.found


@given(bban=st.text(alphabet="0123456789", min_size=16, max_size=24))
def test_no_valid_iban_survives_masking(bban: str) -> None:
    value = iban("PL", bban)
    out = dlp.mask(f"send it to {value} today")
    assert value not in out.text and value[-4:] in out.text


async def test_outside_hours_the_message_is_kept_and_the_answer_says_when(
    bank_client: TestClient[Any, Any],
) -> None:
    token = await _linked(bank_client)
    resp = await _say(bank_client, token, f"my card {PAN} was charged twice", MessageId="m1")
    assert resp.status == 201, await resp.text()
    data = (await resp.json())["Data"]
    # Friday 19:00 UTC in London: Monday 09:00 London (UTC in November)
    assert data["ExpectedReplyDateTime"] == "2026-11-23T09:00:00+00:00"
    assert data["OutsideBusinessHours"] is True and data["Opened"] is True
    assert data["Status"] == "Waiting"
    again = await _say(bank_client, token, f"my card {PAN} was charged twice", MessageId="m1")
    assert again.status == 200 and (await again.json())["Data"]["MessageId"] == data["MessageId"]
    second = await _say(bank_client, token, "hello?")
    body = (await second.json())["Data"]
    assert body["ConversationId"] == data["ConversationId"] and body["Opened"] is False


async def test_in_hours_without_an_agent_the_promise_is_the_configured_wait(
    bank_client: TestClient[Any, Any], clock: FrozenClock
) -> None:
    clock.now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    token = await _linked(bank_client)
    data = (await (await _say(bank_client, token, "hi")).json())["Data"]
    assert data["ExpectedReplyDateTime"] == "2026-11-20T10:30:00+00:00"
    await _staff(bank_client)
    await bank_client.get("/banks/northwind/agent")  # at the console
    data = (await (await _say(bank_client, token, "still there?")).json())["Data"]
    assert data["ExpectedReplyDateTime"] is None and data["OutsideBusinessHours"] is False


async def test_the_api_needs_the_support_scope_and_good_input(
    bank_client: TestClient[Any, Any],
) -> None:
    token = await _linked(bank_client, scope="openid accounts")
    refused = await _say(bank_client, token, "hi")
    assert refused.status == 403
    token = await _linked(bank_client)
    for bad in ({"Text": ""}, {"Text": "x" * 2001}, {"Text": "  "}, {"Rating": 3}):
        resp = await bank_client.post(
            "/banks/northwind/support/v1/messages", json=bad, headers=flow.bearer(token)
        )
        assert resp.status == 400, bad
    missing = await bank_client.post(
        "/banks/northwind/support/v1/conversations/cnv-nope/rating",
        json={"Rating": 5},
        headers=flow.bearer(token),
    )
    assert missing.status == 404


async def test_an_agent_answers_masked_joins_types_closes_and_gets_a_rating(
    aiohttp_client: AiohttpClient, bank_app: web.Application, clock: FrozenClock
) -> None:
    sink = Payloads()
    bank_app[EVENTS] = sink
    clock.now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    client: TestClient[Any, Any] = await aiohttp_client(bank_app)
    token = await _linked(client)
    first = (await (await _say(client, token, f"card {PAN} lost")).json())["Data"]
    conv = first["ConversationId"]
    # customers' passwords do not open the console; staff log in apart
    wrong = await client.post(
        "/banks/northwind/agent/login", data={"username": "demo1", "password": "pass-1"}
    )
    assert wrong.status == 401
    await _staff(client)
    queue = await (await client.get("/banks/northwind/agent")).text()
    assert conv in queue and PAN not in queue and "•••• 1486" in queue
    page = await client.get(f"/banks/northwind/agent/conversations/{conv}")
    html = await page.text()
    assert "script-src 'nonce-" in page.headers["Content-Security-Policy"]
    customer = bank_app[BANKS]["northwind"].customers_by_username["demo1"]
    assert customer.full_name in html and customer.email in html  # the profile, at the bank
    csrf = _csrf(html)
    base = f"/banks/northwind/agent/conversations/{conv}"
    forged = await client.post(base + "/assign", data={"csrf": "nope"})
    assert forged.status == 403
    await client.post(base + "/assign", data={"csrf": csrf}, allow_redirects=False)
    typing = await client.post(base + "/typing", headers={"X-CSRF-Token": csrf})
    assert (await typing.json())["sent"] is True
    again = await client.post(base + "/typing", headers={"X-CSRF-Token": csrf})
    assert (await again.json())["sent"] is False  # throttled
    sent = await client.post(
        base + "/messages",
        data={"csrf": csrf, "text": "Your account is 31926819 and card " + PAN},
        allow_redirects=False,
    )
    assert sent.status == 303 and "notice=masked" in sent.headers["Location"]
    shown = await (await client.get(sent.headers["Location"])).text()
    assert "31926819" not in shown and "•••• 6819" in shown and "masked" in shown
    await client.post(base + "/messages", data={"csrf": csrf, "text": "VIP", "internal": "1"})
    await client.post(base + "/close", data={"csrf": csrf}, allow_redirects=False)
    kinds = [p["type"] for p in sink.payloads]
    assert kinds == ["joined", "typing", "message", "left"]
    message = sink.payloads[2]
    assert message["text"] == "Your account is •••• 6819 and card •••• 1486"
    assert message["agent_name"] == "Sarah" and message["message_id"].startswith("msg-")
    assert all("VIP" not in str(p) and "stf-" not in str(p) for p in sink.payloads)
    assert set(message) == {
        "consent_id",
        "conversation_id",
        "type",
        "agent_name",
        "sent_at",
        "message_id",
        "text",
    }
    rated = await client.post(
        f"/banks/northwind/support/v1/conversations/{conv}/rating",
        json={"Rating": 5},
        headers=flow.bearer(token),
    )
    assert rated.status == 200 and (await rated.json())["Data"]["Rating"] == 5
    poll = await (await client.get(base + "/poll?after=0")).json()
    assert poll["status"] == "closed" and poll["rating"] == 5
    # a new message after closing opens a new conversation
    again_data = (await (await _say(client, token, "one more thing")).json())["Data"]
    assert again_data["ConversationId"] != conv and again_data["Opened"] is True


async def test_a_restart_keeps_the_conversations(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    settings = BankSettings(
        customers_per_bank=3, anchor_date=TODAY, data_dir=str(tmp_path), event_retry_base_s=0.01
    )
    clock = FrozenClock(datetime(2026, 11, 20, 19, 0, tzinfo=UTC))
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings, clock=clock))
    token = await _linked(client)
    conv = (await (await _say(client, token, "kept?")).json())["Data"]["ConversationId"]
    await client.close()
    again: TestClient[Any, Any] = await aiohttp_client(create_app(settings, clock=clock))
    await _staff(again)
    page = await (await again.get(f"/banks/northwind/agent/conversations/{conv}")).text()
    assert "kept?" in page


async def test_the_support_api_matches_the_extension_spec(
    bank_client: TestClient[Any, Any],
) -> None:
    from tests.bank_mock.test_extension_spec import conforms

    await conforms(await bank_client.get("/banks"), "GET")
    token = await _linked(bank_client)
    sent = await _say(bank_client, token, "hello", MessageId="x1", Language="ar")
    await conforms(sent, "POST")
    conv = (await sent.json())["Data"]["ConversationId"]
    base = f"/banks/northwind/support/v1/conversations/{conv}"
    early = await bank_client.post(base + "/rating", json={"Rating": 3}, headers=flow.bearer(token))
    assert early.status == 409
    await conforms(early, "POST")
    closed = await bank_client.post(base + "/close", json={}, headers=flow.bearer(token))
    await conforms(closed, "POST")
    rated = await bank_client.post(base + "/rating", json={"Rating": 3}, headers=flow.bearer(token))
    await conforms(rated, "POST")
    bad = await bank_client.post(base + "/rating", json={"Rating": 9}, headers=flow.bearer(token))
    assert bad.status == 400
    await conforms(bad, "POST")


async def test_with_every_agent_busy_the_promise_is_the_configured_wait(
    aiohttp_client: AiohttpClient, clock: FrozenClock
) -> None:
    settings = BankSettings(
        customers_per_bank=3, anchor_date=TODAY, support_chats_per_agent=1, support_wait_minutes=20
    )
    clock.now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings, clock=clock))
    await _staff(client)  # one agent at the console, free
    first = await _linked(client)
    data = (await (await _say(client, first, "hi")).json())["Data"]
    assert data["ExpectedReplyDateTime"] is None
    page = await (await client.get("/banks/northwind/agent")).text()
    csrf = _csrf(page)
    base = f"/banks/northwind/agent/conversations/{data['ConversationId']}"
    await client.post(base + "/assign", data={"csrf": csrf})
    second = await _linked(client)  # another customer: the only agent now has a chat open
    busy = (await (await _say(client, second, "hello?")).json())["Data"]
    assert busy["ExpectedReplyDateTime"] == "2026-11-20T10:20:00+00:00"
    assert busy["OutsideBusinessHours"] is False
