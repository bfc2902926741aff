"""Every platform endpoint × every refusal class: the status, the error code, and exactly one log
entry (the subject's access log, or the operator's security log) for each refusal.

A new ``/v1`` route without a row here fails :func:`test_every_platform_route_has_a_row`.
Run with ``-s`` to print the figures (cells refused / applicable, refusals logged / expected).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from consent.api.keys import BROKER
from consent.app import create_app as create_broker
from consent.domain.scopes import Scope
from consent.service.broker import Broker
from consent.service.ratelimit import Limits
from tests.consent.broker_env import Env, start, stop

ACCESS, SECURITY = "access", "security"
CLASSES = (
    "no_credential",
    "wrong_credential",
    "wrong_purpose",
    "missing_purpose",
    "other_clients_subject",
    "other_clients_consent",
    "other_clients_handle",
    "other_clients_alert",
    "revoked_consent",
    "expired_consent",
    "scope_not_consented",
    "bank_policy",
    "client_rate_limit",
    "subject_rate_limit",
)


@dataclass(frozen=True)
class Expect:
    status: int
    code: str
    log: str  # ACCESS or SECURITY
    reason: str


@dataclass(frozen=True)
class Row:
    method: str
    template: str
    body: dict[str, Any] | None = None
    # refusal class -> expectation, for the classes that apply beyond the generic ones
    specific: dict[str, Expect] = field(default_factory=dict)
    reads: bool = False  # spends the subject's read budget
    action: str = ""  # as the access log names it
    query: str = ""  # a query string with ids, e.g. "account={handle}"

    @property
    def query_classes(self) -> frozenset[str]:
        """The classes that name a resource in the query (it is only sent for those)."""
        return frozenset({"other_clients_handle"}) if "{handle}" in self.query else frozenset()

    @property
    def names_subject(self) -> bool:
        return "{subject_id}" in self.template


def _deny(status: int, code: str, reason: str | None = None) -> Expect:
    return Expect(status, code, ACCESS, reason or code)


PROBE = Expect(404, "not_found", SECURITY, "other_clients_resource")
TX = "/v1/subjects/{subject_id}/accounts/{handle}/transactions"
ANSWER = "/v1/subjects/{subject_id}/alerts/{alert_id}/answer"
SUPPORT = "/v1/subjects/{subject_id}/consents/{consent_id}/support/"
UNDER_SUPPORT = {
    "other_clients_consent": PROBE,
    "revoked_consent": _deny(403, "consent_not_authorized"),
    "expired_consent": _deny(403, "consent_expired"),
    "scope_not_consented": _deny(403, "scope_not_consented"),
    "bank_policy": _deny(403, "scope_not_allowed_by_bank"),
}

MATRIX: dict[tuple[str, str], Row] = {
    (r.method, r.template): r
    for r in (
        Row("GET", "/v1/banks"),
        Row("POST", "/v1/subjects"),
        Row(
            "POST",
            "/v1/subjects/{subject_id}/consents",
            body={"bank_id": "northwind", "scopes": ["balances"]},
            action="consent.create",
            specific={"bank_policy": _deny(403, "scope_not_allowed_by_bank")},
        ),
        Row("GET", "/v1/subjects/{subject_id}/consents", action="consent.list"),
        Row(
            "DELETE",
            "/v1/subjects/{subject_id}/consents/{consent_id}",
            action="consent.revoke",
            specific={"other_clients_consent": PROBE},
        ),
        Row(
            "GET",
            "/v1/subjects/{subject_id}/balances",
            reads=True,
            action="read.balances",
            specific={"subject_rate_limit": _deny(429, "rate_limited")},
        ),
        Row(
            "GET",
            "/v1/subjects/{subject_id}/accounts",
            reads=True,
            action="read.accounts",
            specific={"subject_rate_limit": _deny(429, "rate_limited")},
        ),
        Row(
            "GET",
            "/v1/subjects/{subject_id}/spending",
            reads=True,
            action="read.spending",
            query="account={handle}",
            specific={
                "other_clients_handle": PROBE,
                "subject_rate_limit": _deny(429, "rate_limited"),
            },
        ),
        Row(
            "GET",
            "/v1/subjects/{subject_id}/insights",
            reads=True,
            action="read.insights",
            specific={"subject_rate_limit": _deny(429, "rate_limited")},
        ),
        Row(
            "GET",
            "/v1/subjects/{subject_id}/cards",
            reads=True,
            action="read.cards",
            specific={"subject_rate_limit": _deny(429, "rate_limited")},
        ),
        Row(
            "POST",
            "/v1/subjects/{subject_id}/cards/{card_handle}/{action}",
            reads=True,
            action="card.freeze",
            specific={"subject_rate_limit": _deny(429, "rate_limited")},
        ),
        Row("GET", "/v1/subjects/{subject_id}/access-log", action="access_log.read"),
        Row(
            "GET",
            TX,
            reads=True,
            action="read.transactions",
            specific={
                "other_clients_handle": PROBE,
                "revoked_consent": _deny(403, "consent_not_authorized"),
                "expired_consent": _deny(403, "consent_expired"),
                "scope_not_consented": _deny(403, "scope_not_consented"),
                "bank_policy": _deny(403, "scope_not_allowed_by_bank"),
                "subject_rate_limit": _deny(429, "rate_limited"),
            },
        ),
        Row(
            "POST",
            ANSWER,
            body={"answer": "it_was_me"},
            action="alert.answer",
            specific={
                "other_clients_alert": PROBE,
                "revoked_consent": _deny(403, "consent_not_authorized"),
                "expired_consent": _deny(403, "consent_expired"),
                "scope_not_consented": _deny(403, "scope_not_consented"),
                "bank_policy": _deny(403, "scope_not_allowed_by_bank"),
            },
        ),
        Row(
            "POST",
            SUPPORT + "messages",
            body={"text": "hello"},
            reads=True,
            action="support.send",
            specific={**UNDER_SUPPORT, "subject_rate_limit": _deny(429, "rate_limited")},
        ),
        Row(
            "POST",
            SUPPORT + "rating",
            body={"conversation": "conv_x", "rating": 5},
            action="support.rate",
            specific=UNDER_SUPPORT,
        ),
        Row(
            "POST",
            SUPPORT + "close",
            body={"conversation": "conv_x"},
            action="support.close",
            specific=UNDER_SUPPORT,
        ),
        Row("GET", "/v1/subjects/{subject_id}/receipts", action="receipts.read"),
        Row(
            "PUT",
            "/v1/subjects/{subject_id}/accounts/{handle}/receipts",
            body={"enabled": True},
            action="receipts.set",
            specific={
                "other_clients_handle": PROBE,
                "revoked_consent": _deny(403, "consent_not_authorized"),
                "expired_consent": _deny(403, "consent_expired"),
                "scope_not_consented": _deny(403, "scope_not_consented"),
                "bank_policy": _deny(403, "scope_not_allowed_by_bank"),
            },
        ),
        Row(
            "PUT",
            "/v1/subjects/{subject_id}/receipts/quiet-hours",
            body={"start": "22:00", "end": "07:00", "timezone": "Europe/London"},
            action="receipts.quiet_hours",
        ),
        Row(
            "DELETE",
            "/v1/subjects/{subject_id}/receipts/quiet-hours",
            action="receipts.quiet_hours",
        ),
        Row("GET", "/v1/subjects/{subject_id}/export", action="subject.export"),
        Row("DELETE", "/v1/subjects/{subject_id}", action="subject.delete"),
    )
}


def expectation(row: Row, klass: str) -> Expect | None:
    """What ``klass`` must get on ``row``; None where the class cannot apply to the endpoint."""
    if klass in ("no_credential", "wrong_credential"):
        return Expect(401, "unauthenticated", SECURITY, "unauthenticated")
    if klass in ("wrong_purpose", "missing_purpose"):
        log = ACCESS if row.names_subject else SECURITY
        return Expect(403, "purpose_not_permitted", log, "purpose_not_permitted")
    if klass == "client_rate_limit":
        return Expect(429, "rate_limited", SECURITY, "client_rate_limited")
    if klass == "other_clients_subject":
        return PROBE if row.names_subject else None
    return row.specific.get(klass)


@dataclass
class World:
    env: Env
    db: Path
    other: str  # another platform client's credential
    ids: dict[str, str]  # the caller's own resources, by path parameter
    other_ids: dict[str, str]  # the other client's
    variants: dict[str, dict[str, str]]  # per refusal class: path parameters to use instead

    @property
    def broker(self) -> Broker:
        broker: Broker = self.env.broker.app[BROKER]
        return broker

    def counts(self) -> tuple[int, int]:
        with sqlite3.connect(self.db) as conn:
            audit = conn.execute("SELECT count(*) FROM audit_entry").fetchone()[0]
            security = conn.execute("SELECT count(*) FROM security_event").fetchone()[0]
        return int(audit), int(security)

    def last_access(self) -> tuple[str, str, str, str]:
        with sqlite3.connect(self.db) as conn:
            row = conn.execute(
                "SELECT subject_id, action, outcome, reason FROM audit_entry ORDER BY id DESC"
            ).fetchone()
        return row[0], row[1], row[2], row[3]

    def last_security(self) -> tuple[str | None, str, str, str]:
        with sqlite3.connect(self.db) as conn:
            row = conn.execute(
                "SELECT client_id, method, route, reason FROM security_event ORDER BY id DESC"
            ).fetchone()
        return row[0], row[1], row[2], row[3]

    def sql(self, statement: str, *args: Any) -> list[Any]:
        with sqlite3.connect(self.db) as conn:
            return list(conn.execute(statement, args).fetchall())


class Exhausted:
    """A rate limiter with nothing left (any backend with the same method plugs in)."""

    async def take(self, key: str, now: datetime) -> int | None:
        return 42


async def _handles(world_db: Path, consent_id: str) -> str:
    with sqlite3.connect(world_db) as conn:
        return str(
            conn.execute(
                "SELECT handle FROM account_handle WHERE consent_id = ? ORDER BY handle",
                (consent_id,),
            ).fetchone()[0]
        )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db = tmp_path / "consent.db"
    env = await start(tmp_path, f"sqlite+aiosqlite:///{db}", sweep_interval_s=3600)
    try:
        subject = await env.subject()
        main = await env.link(
            subject,
            scopes=["balances", "transactions", "fraud_alerts", "card_controls", "support"],
        )
        narrow = await env.link(subject, scopes=["balances", "fraud_alerts"])
        ending = await env.link(subject, duration_days=1)
        revoked = await env.link(subject)
        read = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
        assert read.status == 200, await read.text()
        gone = await env.broker.delete(
            f"/v1/subjects/{subject}/consents/{revoked}", headers=env.auth()
        )
        assert gone.status == 200
        other = await env.new_client("another-platform")
        other_subject = await env.subject(credential=other)
        started = await env.broker.post(
            f"/v1/subjects/{other_subject}/consents",
            json={"bank_id": "northwind", "scopes": ["balances", "fraud_alerts"]},
            headers=env.auth(credential=other),
        )
        assert started.status == 201
        other_consent = (await started.json())["consent_id"]
        with sqlite3.connect(db) as conn:
            for consent_id in (main, narrow, ending, revoked, other_consent):
                conn.execute(
                    "INSERT INTO fraud_alert (alert_id, handle, consent_id) VALUES (?, ?, ?)",
                    (f"fa-{consent_id}", f"alt_{consent_id}", consent_id),
                )
            conn.execute(
                "INSERT INTO account_handle (handle, consent_id, account_ref) VALUES (?, ?, ?)",
                ("acc_otherclient", other_consent, b"sealed elsewhere"),
            )
        env.clock.now += timedelta(hours=25)  # the one-day consent has expired, unswept
        ids = {
            "subject_id": subject,
            "consent_id": main,
            "handle": await _handles(db, main),
            "alert_id": f"alt_{main}",
            "card_handle": "crd_any",  # refused before any card is looked up
            "action": "freeze",
        }
        yield World(
            env=env,
            db=db,
            other=other,
            ids=ids,
            other_ids={
                "subject_id": other_subject,
                "consent_id": other_consent,
                "handle": "acc_otherclient",
                "alert_id": f"alt_{other_consent}",
            },
            variants={
                "revoked_consent": {
                    "handle": await _handles(db, revoked),
                    "alert_id": f"alt_{revoked}",
                    "consent_id": revoked,
                },
                "expired_consent": {
                    "handle": await _handles(db, ending),
                    "alert_id": f"alt_{ending}",
                    "consent_id": ending,
                },
                "scope_not_consented": {
                    "handle": await _handles(db, narrow),
                    "alert_id": f"alt_{narrow}",
                    "consent_id": narrow,
                },
            },
        )
    finally:
        await stop(env)


@contextmanager
def _situation(world: World, row: Row, klass: str) -> Iterator[dict[str, Any] | None]:
    """The state a refusal class needs (a stricter bank policy, an exhausted limit), restored
    afterwards; yields the body to send."""
    broker = world.broker
    body = row.body
    saved_policies, saved_limits = dict(broker.policies), broker.limits
    assert saved_limits is not None
    if klass == "bank_policy" and row.template.endswith("/consents"):
        body = {"bank_id": "wisla", "scopes": ["balances", "transactions"]}
    elif klass == "bank_policy":  # the bank stopped sharing this after the consent was given
        strict = broker.policies["northwind"].allowed_scopes - {
            Scope.TRANSACTIONS,
            Scope.CARD_CONTROLS,
            Scope.SUPPORT,
        }
        broker.policies["northwind"] = broker.policies["northwind"].model_copy(
            update={"allowed_scopes": strict}
        )
        body = {"answer": "freeze_card"} if row.template == ANSWER else body
    elif klass == "scope_not_consented" and row.template == ANSWER:
        body = {"answer": "freeze_card"}  # fraud alerts shared, card controls not
    elif klass == "client_rate_limit":
        broker.limits = Limits(subjects=saved_limits.subjects, clients=Exhausted())
    elif klass == "subject_rate_limit":
        broker.limits = Limits(subjects=Exhausted(), clients=saved_limits.clients)
    try:
        yield body
    finally:
        broker.policies.clear()
        broker.policies.update(saved_policies)
        broker.limits = saved_limits


def _request(
    world: World, row: Row, klass: str
) -> tuple[str, dict[str, str], Callable[[dict[str, str]], str]]:
    ids = dict(world.ids)
    ids.update(world.variants.get(klass, {}))
    if klass == "other_clients_subject":
        ids["subject_id"] = world.other_ids["subject_id"]
    for name in ("consent", "handle", "alert"):
        if klass == f"other_clients_{name}":
            key = {"consent": "consent_id", "handle": "handle", "alert": "alert_id"}[name]
            ids[key] = world.other_ids[key]
    headers = world.env.auth()
    if klass == "no_credential":
        headers = {"X-Purpose": "chat-service"}
    elif klass == "wrong_credential":
        headers = world.env.auth(credential=world.env.credential.split(".")[0] + ".wrong")
    elif klass == "wrong_purpose":
        headers = world.env.auth(purpose="advertising")
    elif klass == "missing_purpose":
        headers = {"Authorization": world.env.auth()["Authorization"]}

    def path(override: dict[str, str]) -> str:
        named = {**ids, **override}
        query = row.query.format(**named) if klass in row.query_classes else ""
        return row.template.format(**named) + (f"?{query}" if query else "")

    return path({}), headers, path


@dataclass
class Tally:
    applicable: int = 0
    refused: int = 0
    logged: int = 0
    failures: list[str] = field(default_factory=list)


async def _cell(world: World, row: Row, klass: str, want: Expect, tally: Tally) -> None:
    where = f"{row.method} {row.template} × {klass}"
    path, headers, build = _request(world, row, klass)
    before = world.counts()
    with _situation(world, row, klass) as body:
        resp = await world.env.broker.request(row.method, path, json=body, headers=headers)
        answer = await resp.json() if resp.content_type == "application/json" else {}
    after = world.counts()
    tally.applicable += 1
    if resp.status == want.status and answer.get("error") == want.code:
        tally.refused += 1
    else:
        tally.failures.append(f"{where}: got {resp.status} {answer}, want {want}")
        return
    grew = (after[0] - before[0], after[1] - before[1])
    if want.log == ACCESS:
        subject, action, outcome, reason = world.last_access()
        ok = grew == (1, 0) and (subject, action, outcome, reason) == (
            world.ids["subject_id"],
            row.action,
            "denied",
            want.reason,
        )
    else:
        client, method, route, reason = world.last_security()
        expected_client = None if want.status == 401 else world.env.credential.split(".")[0]
        ok = grew == (0, 1) and (client, method, route, reason) == (
            expected_client,
            row.method,
            row.template,
            want.reason,
        )
    if ok:
        tally.logged += 1
    else:
        tally.failures.append(f"{where}: log grew {grew}, want one {want.log} entry {want}")
    if want == PROBE:  # the other client's resource answers exactly as a missing one
        key = {
            "other_clients_subject": "subject_id",
            "other_clients_consent": "consent_id",
            "other_clients_handle": "handle",
            "other_clients_alert": "alert_id",
        }[klass]
        missing = await world.env.broker.request(
            row.method, build({key: "x_doesnotexist"}), json=body, headers=headers
        )
        if (missing.status, await missing.json()) != (resp.status, answer):
            tally.failures.append(f"{where}: a missing {key} answers differently")
        leaked = [v for v in world.other_ids.values() if v in str(world.last_security())]
        if leaked:
            tally.failures.append(f"{where}: the security log names {leaked}")


def unmatched_routes(app: web.Application) -> set[tuple[str, str]]:
    """``/v1`` routes the app serves without a row in MATRIX, and rows without a route."""
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/v1/") and r.method != "HEAD"
    }
    return served ^ set(MATRIX)


def test_every_platform_route_has_a_row(world: World) -> None:
    assert unmatched_routes(world.env.broker.app) == set(), "add a MATRIX row for every /v1 route"


def test_a_new_route_without_a_row_is_caught(world: World) -> None:
    app = create_broker(world.env.broker_settings)
    app.router.add_get("/v1/subjects/{subject_id}/something-new", _never)
    assert unmatched_routes(app) == {("GET", "/v1/subjects/{subject_id}/something-new")}


async def _never(request: web.Request) -> web.Response:
    raise AssertionError("never called")


async def test_every_refusal_class_is_refused_and_logged_once_on_every_endpoint(
    world: World,
) -> None:
    tally = Tally()
    for row in MATRIX.values():
        for klass in CLASSES:
            want = expectation(row, klass)
            if want is not None:
                await _cell(world, row, klass, want, tally)
    total = len(MATRIX) * len(CLASSES)
    print(
        f"\nauthorization matrix: {len(MATRIX)} endpoints × {len(CLASSES)} classes = {total} "
        f"cells, {tally.applicable} applicable; refused {tally.refused}/{tally.applicable}; "
        f"logged {tally.logged}/{tally.applicable}"
    )
    assert tally.failures == []
    assert tally.refused == tally.logged == tally.applicable
    # the subject is still there: no refused request acted
    assert world.sql("SELECT count(*) FROM subject") == [(2,)]
