"""Tampering with the access log in the database itself (an operator or intruder with SQL
access) is found by verification: the broker's access-log endpoint and the bot's /privacy view
both say at which entry the chain breaks. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot import views
from bot.broker import AccessLog
from bot.i18n import tr
from consent.store.db import make_engine
from tests.consent.broker_env import Env, start, stop


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, database_url)
    yield e
    await stop(e)


async def _log(env: Env, subject: str) -> dict[str, Any]:
    resp = await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def _sql(env: Env, *statements: str, **params: Any) -> None:
    engine = make_engine(env.broker_settings.database_url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement), params)
    finally:
        await engine.dispose()


# Each tampering, and the entry verification must name.
EDIT = ("UPDATE audit_entry SET outcome = 'denied' WHERE subject_id = :s AND seq = 3",)
EDIT_FIELDS = ("UPDATE audit_entry SET fields = 'iban' WHERE subject_id = :s AND seq = 4",)
DELETE = ("DELETE FROM audit_entry WHERE subject_id = :s AND seq = 3",)
REORDER = (  # swap the positions of entries 3 and 4
    "UPDATE audit_entry SET seq = -1 WHERE subject_id = :s AND seq = 3",
    "UPDATE audit_entry SET seq = 3 WHERE subject_id = :s AND seq = 4",
    "UPDATE audit_entry SET seq = 4 WHERE subject_id = :s AND seq = -1",
)
# (statements, the entry named as broken, how many entries verified before it)
CASES: dict[str, tuple[tuple[str, ...], int, int]] = {
    "edit": (EDIT, 3, 2),
    "edit_fields": (EDIT_FIELDS, 4, 3),
    "delete": (DELETE, 4, 2),  # entry 4 now sits where entry 3 was
    "reorder": (REORDER, 3, 2),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_tampered_access_log_row_is_named_by_verification(env: Env, case: str) -> None:
    statements, broken_at, checked = CASES[case]
    subject = await env.subject()
    await env.link(subject)
    for _ in range(4):
        resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
        assert resp.status == 200
    before = await _log(env, subject)
    assert before["integrity"]["ok"] and before["integrity"]["checked"] >= 6

    await _sql(env, *statements, s=subject)

    after = await _log(env, subject)
    assert after["integrity"]["ok"] is False
    assert after["integrity"]["first_bad_seq"] == broken_at
    assert after["integrity"]["checked"] == checked
    # the bot's /privacy → "Access log" shows the same verdict to the user
    shown = views.access_log(tr("en"), AccessLog.model_validate(after))
    assert f"broken at entry {broken_at}" in shown
    assert "Integrity verified" not in shown
