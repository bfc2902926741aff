"""The OBIE account-information endpoints: permissions, paging, filters, schema validity."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from bank_mock.clock import FrozenClock
from bank_mock.keys import BANKS
from tests.bank_mock import flow
from tests.bank_mock.obie import SHARED_SPEC, SPEC, assert_obie

BASE = flow.AISP.format(bank="northwind")
Client = TestClient[Any, Any]


async def _accounts(client: Client, token: str) -> list[dict[str, Any]]:
    resp = await client.get(BASE + "/accounts", headers=flow.bearer(token))
    body = await assert_obie(resp)
    assert resp.status == 200
    accounts: list[dict[str, Any]] = orjson.loads(body)["Data"]["Account"]
    return accounts


async def test_a_linked_consent_reads_accounts_balances_and_transactions(
    bank_client: Client,
) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    accounts = await _accounts(bank_client, linked.access_token)
    assert accounts
    assert all("Account" in a for a in accounts)  # ReadAccountsDetail adds identification
    account_id = accounts[0]["AccountId"]
    one = await bank_client.get(
        f"{BASE}/accounts/{account_id}", headers=flow.bearer(linked.access_token)
    )
    assert orjson.loads(await assert_obie(one))["Data"]["Account"][0]["AccountId"] == account_id
    bal = await bank_client.get(
        f"{BASE}/accounts/{account_id}/balances", headers=flow.bearer(linked.access_token)
    )
    balances = orjson.loads(await assert_obie(bal))["Data"]["Balance"]
    assert {b["Type"] for b in balances} == {"InterimBooked", "InterimAvailable"}
    tx = await bank_client.get(
        f"{BASE}/accounts/{account_id}/transactions", headers=flow.bearer(linked.access_token)
    )
    page = orjson.loads(await assert_obie(tx))
    assert page["Data"]["Transaction"]
    assert tx.headers["x-fapi-interaction-id"]


async def test_basic_account_permission_hides_account_numbers(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg, ["ReadAccountsBasic"])
    accounts = await _accounts(bank_client, linked.access_token)
    assert accounts
    assert all("Account" not in a for a in accounts)


async def test_bulk_balances_cover_every_consented_account_in_one_answer(
    bank_client: Client,
) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    accounts = await _accounts(bank_client, linked.access_token)
    resp = await bank_client.get(f"{BASE}/balances", headers=flow.bearer(linked.access_token))
    balances = orjson.loads(await assert_obie(resp))["Data"]["Balance"]
    assert sorted({b["AccountId"] for b in balances}) == sorted(a["AccountId"] for a in accounts)
    for account in accounts:
        one = await bank_client.get(
            f"{BASE}/accounts/{account['AccountId']}/balances",
            headers=flow.bearer(linked.access_token),
        )
        alone = orjson.loads(await assert_obie(one))["Data"]["Balance"]
        assert [b for b in balances if b["AccountId"] == account["AccountId"]] == alone
    basic = await flow.link(bank_client, reg, ["ReadAccountsBasic"])
    refused = await bank_client.get(f"{BASE}/balances", headers=flow.bearer(basic.access_token))
    assert refused.status == 403
    await assert_obie(refused)


async def test_missing_balance_permission_is_forbidden(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg, ["ReadAccountsBasic"])
    account_id = (await _accounts(bank_client, linked.access_token))[0]["AccountId"]
    resp = await bank_client.get(
        f"{BASE}/accounts/{account_id}/balances", headers=flow.bearer(linked.access_token)
    )
    body = orjson.loads(await assert_obie(resp))
    assert resp.status == 403
    assert body["Errors"][0]["ErrorCode"] == "UK.OBIE.Resource.ConsentMismatch"


async def test_basic_transactions_omit_merchant_and_balance_and_mask_the_card(
    bank_client: Client,
) -> None:
    reg = await flow.register(bank_client, "northwind")
    perms = ["ReadAccountsBasic", "ReadTransactionsBasic", "ReadTransactionsDebits"]
    linked = await flow.link(bank_client, reg, perms)
    account_id = (await _accounts(bank_client, linked.access_token))[0]["AccountId"]
    resp = await bank_client.get(
        f"{BASE}/accounts/{account_id}/transactions", headers=flow.bearer(linked.access_token)
    )
    txs = orjson.loads(await assert_obie(resp))["Data"]["Transaction"]
    assert txs
    assert all(t["CreditDebitIndicator"] == "Debit" for t in txs)  # Debits only
    for t in txs:
        assert not {
            "MerchantDetails",
            "Balance",
            "TransactionInformation",
            "CreditorAccount",
        } & set(t)
        if "CardInstrument" in t:
            assert flow.MASKED.match(t["CardInstrument"]["Identification"])


async def test_read_pan_reveals_the_full_card_number(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg, [*flow.ALL_READ, "ReadPAN"])
    account_id = (await _accounts(bank_client, linked.access_token))[0]["AccountId"]
    resp = await bank_client.get(
        f"{BASE}/accounts/{account_id}/transactions", headers=flow.bearer(linked.access_token)
    )
    txs = orjson.loads(await assert_obie(resp))["Data"]["Transaction"]
    pans = [t["CardInstrument"]["Identification"] for t in txs if "CardInstrument" in t]
    assert pans
    assert all(p.isdigit() and len(p) == 16 for p in pans)


async def test_paging_with_links_next_visits_every_transaction_once_newest_first(
    bank_client: Client,
) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    account_id = (await _accounts(bank_client, linked.access_token))[0]["AccountId"]
    url: str | None = f"{BASE}/accounts/{account_id}/transactions"
    seen: list[str] = []
    times: list[str] = []
    pages = 0
    while url:
        resp = await bank_client.get(url, headers=flow.bearer(linked.access_token))
        page = orjson.loads(await assert_obie(resp))
        seen += [t["TransactionId"] for t in page["Data"]["Transaction"]]
        times += [t["BookingDateTime"] for t in page["Data"]["Transaction"]]
        url = page["Links"].get("Next")
        if url:
            url = url.replace(str(bank_client.make_url("")), "").replace(
                "http://127.0.0.1:8001", ""
            )
        pages += 1
        assert page["Meta"]["TotalPages"] >= pages
    assert len(seen) == len(set(seen))
    assert pages > 1
    assert times == sorted(times, reverse=True)


async def test_booking_date_filters_bound_the_transactions(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    account_id = (await _accounts(bank_client, linked.access_token))[0]["AccountId"]
    resp = await bank_client.get(
        f"{BASE}/accounts/{account_id}/transactions",
        params={
            "fromBookingDateTime": "2026-03-01T00:00:00",
            "toBookingDateTime": "2026-03-31T23:59:59+00:00",
        },
        headers=flow.bearer(linked.access_token),
    )
    txs = orjson.loads(await assert_obie(resp))["Data"]["Transaction"]
    assert txs
    assert all(t["BookingDateTime"].startswith("2026-03") for t in txs)


async def test_bad_query_parameters_are_400_with_an_obie_body(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    account_id = (await _accounts(bank_client, linked.access_token))[0]["AccountId"]
    for params in (
        {"fromBookingDateTime": "yesterday"},
        {"page": "0"},
        {"page": "abc"},
        {"page": "9999"},
        {"fromBookingDateTime": "2026-05-01T00:00:00", "toBookingDateTime": "2026-04-01T00:00:00"},
    ):
        resp = await bank_client.get(
            f"{BASE}/accounts/{account_id}/transactions",
            params=params,
            headers=flow.bearer(linked.access_token),
        )
        await assert_obie(resp)
        assert resp.status == 400, params


async def test_an_account_outside_the_consent_is_refused(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    other = next(
        a for a in bank_client.app[BANKS]["northwind"].accounts if not a.startswith("noc000001")
    )
    resp = await bank_client.get(
        f"{BASE}/accounts/{other}/balances", headers=flow.bearer(linked.access_token)
    )
    await assert_obie(resp)
    assert resp.status == 403


async def test_tokens_are_refused_when_missing_expired_revoked_or_from_another_bank(
    bank_client: Client, clock: FrozenClock
) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    missing = await bank_client.get(BASE + "/accounts")
    await assert_obie(missing)
    assert missing.status == 401
    other_bank = await bank_client.get(
        "/banks/libertas/open-banking/v3.1/aisp/accounts", headers=flow.bearer(linked.access_token)
    )
    assert other_bank.status == 401
    cc = await flow.cc_token(bank_client, reg)
    wrong_kind = await bank_client.get(BASE + "/accounts", headers=flow.bearer(cc))
    await assert_obie(wrong_kind)
    assert wrong_kind.status == 403
    clock.advance(seconds=301)
    expired = await bank_client.get(BASE + "/accounts", headers=flow.bearer(linked.access_token))
    await assert_obie(expired)
    assert expired.status == 401


async def test_a_deleted_consent_stops_reading_at_once(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    cc = await flow.cc_token(bank_client, reg)
    gone = await bank_client.delete(
        f"{BASE}/account-access-consents/{linked.consent_id}", headers=flow.bearer(cc)
    )
    assert gone.status == 204
    resp = await bank_client.get(BASE + "/accounts", headers=flow.bearer(linked.access_token))
    assert resp.status == 401


async def test_an_expired_consent_cannot_read(bank_client: Client, clock: FrozenClock) -> None:
    reg = await flow.register(bank_client, "northwind")
    consent_id = await flow.create_consent(
        bank_client, reg, flow.ALL_READ, ExpirationDateTime="2026-11-20T19:02:00+00:00"
    )
    location, verifier = await flow.approve_in_browser(bank_client, reg, consent_id)
    token = await bank_client.post(
        "/banks/northwind/token",
        data={
            "grant_type": "authorization_code",
            "code": location.query["code"],
            "redirect_uri": flow.REDIRECT,
            "code_verifier": verifier,
        },
        headers=reg.basic(),
    )
    access = (await token.json())["access_token"]
    clock.advance(minutes=3)
    resp = await bank_client.get(BASE + "/accounts", headers=flow.bearer(access))
    body = orjson.loads(await assert_obie(resp))
    assert resp.status == 403
    assert "expired" in body["Message"]


def test_the_vendored_obie_file_is_the_shared_reference_copy() -> None:
    if not SHARED_SPEC.exists():
        pytest.skip(f"no shared reference copy at {SHARED_SPEC} to compare with")
    assert SPEC.read_bytes() == SHARED_SPEC.read_bytes()


async def test_page_accepts_ascii_digits_in_range_only(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    account_id = (await _accounts(bank_client, linked.access_token))[0]["AccountId"]
    path = f"{BASE}/accounts/{account_id}/transactions"
    for page in ["²", "①", "٣", "+1", " 1", "", "0", "1000001", "9" * 30]:
        resp = await bank_client.get(
            path, params={"page": page}, headers=flow.bearer(linked.access_token)
        )
        assert resp.status == 400, (page, await resp.text())
        assert orjson.loads(await assert_obie(resp))["Errors"][0]["Path"] == "page"
    resp = await bank_client.get(
        path, params={"page": "2"}, headers=flow.bearer(linked.access_token)
    )
    assert resp.status == 200
