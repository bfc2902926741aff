"""A bank alert reaches every consent over the flagged account: two people on the platform (or
on two platforms) linked to the same bank customer each get it once, answer it on their own,
and cannot touch each other's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col, select

from bank_mock.fraud.publisher import FRAUD_ALERT, PUBLISHER
from bank_mock.fraud.signing import SIGNERS
from bank_mock.keys import BANKS
from consent.api.keys import BROKER
from consent.domain.handles import alert_handle
from consent.store.tables import AlertRow, ConsentRow, OutboxRow, ProcessedEvent
from tests.consent.broker_env import Env, start, stop

SCOPES = ["balances", "fraud_alerts", "card_controls"]


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, database_url)
    yield e
    await stop(e)


async def _flag(env: Env) -> str:
    """A payment the bank's fraud rules flag on demo1's first account; returns the bank's
    alert id once every event about it reached the broker."""
    bank = env.bank_app[BANKS]["northwind"]
    account = bank.customers_by_username["demo1"].account_ids[0]
    resp = await env.bank.post(
        "/sandbox/banks/northwind/transactions",
        json={
            "account_id": account,
            "amount": "3100.00",
            "merchant_name": "Gadget Hub",
            "country": "BR",
        },
    )
    (alert_id,) = (await resp.json())["alerts"]
    async with asyncio.timeout(15):
        await env.bank_app[PUBLISHER].drain()
    return str(alert_id)


async def _alerts(env: Env) -> list[tuple[str, str, dict[str, Any]]]:
    """(client, subject, alert view) of every fraud alert the broker queued for a platform."""
    broker = env.broker.app[BROKER]
    async with broker.sessions() as session:
        rows = (
            await session.exec(select(OutboxRow).where(col(OutboxRow.kind) == "fraud_alert"))
        ).all()
    return [(r.client_id, r.subject_id, json.loads(r.payload)["alert"]) for r in rows]


async def _answer(
    env: Env, subject: str, handle: str, answer: str, credential: str | None = None
) -> tuple[int, dict[str, Any]]:
    resp = await env.broker.post(
        f"/v1/subjects/{subject}/alerts/{handle}/answer",
        json={"answer": answer},
        headers=env.auth(credential=credential),
    )
    return resp.status, await resp.json()


async def test_every_subject_linked_to_the_customer_gets_the_alert_once_and_answers_it_alone(
    env: Env,
) -> None:
    other_platform = await env.new_client("another-platform")
    ana, ben = await env.subject(), await env.subject()
    cleo = await env.subject(other_platform)
    for subject, credential in ((ana, None), (ben, None), (cleo, other_platform)):
        await env.link(subject, scopes=SCOPES, credential=credential)
    bank_alert = await _flag(env)

    queued = await _alerts(env)
    by_subject = {subject: alert for _, subject, alert in queued}
    assert sorted(subject for _, subject, _ in queued) == sorted([ana, ben, cleo])  # once each
    assert {c for c, s, _ in queued if s == cleo} != {c for c, s, _ in queued if s == ana}
    handles = {a["alert_id"] for a in by_subject.values()}
    assert len(handles) == 3 and bank_alert not in json.dumps(queued)
    broker = env.broker.app[BROKER]
    async with broker.sessions() as session:
        rows = (await session.exec(select(AlertRow))).all()
        events = (await session.exec(select(ProcessedEvent))).all()
    assert sorted(r.alert_id for r in rows) == [bank_alert] * 3
    assert len({r.consent_id for r in rows}) == 3
    # each consent's event was processed once: delivering them all again changes nothing
    assert len(events) >= 3

    # another subject's handle names nothing here, for the same platform or another one
    status, body = await _answer(env, ana, by_subject[ben]["alert_id"], "it_was_me")
    assert (status, body["error"]) == (404, "not_found")
    status, _ = await _answer(env, cleo, by_subject[ana]["alert_id"], "it_was_me", other_platform)
    assert status == 404
    status, _ = await _answer(env, ana, by_subject[cleo]["alert_id"], "it_was_me")
    assert status == 404

    # Ana says it was her; Ben, seeing the same payment, says it was not: the card is frozen
    status, ana_says = await _answer(env, ana, by_subject[ana]["alert_id"], "it_was_me")
    assert status == 200 and ana_says["answer"] == "it_was_me"
    assert ana_says["alert_id"] == by_subject[ana]["alert_id"]
    status, ben_says = await _answer(env, ben, by_subject[ben]["alert_id"], "freeze_card")
    assert status == 200, ben_says
    assert (ben_says["answer"], ben_says["card_status"]) == ("freeze_card", "Frozen")
    assert ben_says["alert_id"] == by_subject[ben]["alert_id"]
    # Cleo, on the other platform, has not answered: her alert still offers both answers
    status, cleo_says = await _answer(
        env, cleo, by_subject[cleo]["alert_id"], "it_was_me", other_platform
    )
    assert status == 200 and cleo_says["answer"] == "it_was_me"
    async with broker.sessions() as session:
        answers = {r.consent_id: r.answer for r in (await session.exec(select(AlertRow))).all()}
    assert sorted(a or "" for a in answers.values()) == ["freeze_card", "it_was_me", "it_was_me"]
    bank = env.bank_app[BANKS]["northwind"]
    account = bank.customers_by_username["demo1"].account_ids[0]
    assert bank.cards[bank.accounts[account].card_ids[0]].status == "Frozen"


async def _post_alert(
    env: Env, bank_consent_id: str, alert_id: str, token: str = ""
) -> tuple[str, str]:
    """POST a signed fraud-alert SET about one bank consent (``token`` again to replay it)."""
    if not token:
        cred = await env.broker.app[BROKER].credentials("northwind")
        bank = env.bank_app[BANKS]["northwind"]
        account = bank.customers_by_username["demo1"].account_ids[0]
        token = env.bank_app[SIGNERS]["northwind"].make_set(
            audience=cred.client_id,
            subject="x",
            events={
                FRAUD_ALERT: {
                    "alert_id": alert_id,
                    "consent_id": bank_consent_id,
                    "account_id": account,
                    "reason": "unusual_amount",
                    "transaction": {
                        "merchant_name": "Gadget Hub",
                        "Amount": "9.00",
                        "Currency": "GBP",
                    },
                }
            },
            now=env.clock.now,
        )
    resp = await env.broker.post(
        "/events/northwind", data=token, headers={"Content-Type": "application/jwt"}
    )
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["status"]), token


async def test_each_event_is_processed_once_and_each_consent_holds_an_alert_once(
    env: Env,
) -> None:
    ana, ben = await env.subject(), await env.subject()
    ana_consent = await env.link(ana, scopes=SCOPES)
    ben_consent = await env.link(ben, scopes=SCOPES)
    broker = env.broker.app[BROKER]
    bank_ids: dict[str, str | None] = {}
    async with broker.sessions() as session:
        for c in (ana_consent, ben_consent):
            row = await session.get(ConsentRow, c)
            assert row is not None
            bank_ids[c] = row.bank_consent_id
    status, token = await _post_alert(env, str(bank_ids[ben_consent]), "fa-same")
    assert status == "processed"
    assert (await _post_alert(env, "", "", token))[0] == "duplicate"  # the same jti: once
    # the bank telling Ben's consent again under a new jti adds nothing
    assert (await _post_alert(env, str(bank_ids[ben_consent]), "fa-same"))[0] == "ignored"
    # the same bank alert about Ana's consent is hers to see
    assert (await _post_alert(env, str(bank_ids[ana_consent]), "fa-same"))[0] == "processed"
    queued = await _alerts(env)
    assert sorted(s for _, s, _ in queued) == sorted([ana, ben])


ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)


@given(bank=ids, alert=ids, one=ids, other=ids)
def test_an_alert_handle_is_stable_per_consent_and_names_no_other(
    bank: str, alert: str, one: str, other: str
) -> None:
    secret = b"handle-secret"
    mine = alert_handle(secret, bank, alert, one)
    assert mine == alert_handle(secret, bank, alert, one)  # a button keeps working
    assert mine.startswith("alt_") and len(mine) == 26
    if other != one:
        assert alert_handle(secret, bank, alert, other) != mine
