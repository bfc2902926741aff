"""The bot's storage on SQLite and PostgreSQL: migrations, handles, flow state, de-duplication
and persisted conversation states."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect as sa_inspect

from bot.store import repo
from bot.store.db import async_url, make_engine, session_factory, upgrade_async
from bot.store.persistence import SqlPersistence
from bot.store.repo import Sessions
from bot.store.tables import ChatUser
from tests.bot.system import ALICE, start_system, stop_system
from tests.bot.test_conversations import link_bank

BIG_ID = 7_000_000_123  # Telegram ids outgrow 32 bits


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    url = database_url
    await upgrade_async(url)
    engine = make_engine(url)
    yield session_factory(engine)
    await engine.dispose()


def test_plain_urls_get_async_drivers() -> None:
    assert async_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"


async def test_the_schema_holds_only_handles_preferences_state_and_ids(sessions: Sessions) -> None:
    async with sessions() as session:
        connection = await session.connection()
        columns = await connection.run_sync(
            lambda c: {
                t: sorted(col["name"] for col in sa_inspect(c).get_columns(t))
                for t in sa_inspect(c).get_table_names()
                if not t.endswith("alembic_version")
            }
        )
    assert columns == {
        # the time zone the user chose (/timezone): a preference, like the language
        "chat_users": ["chat_id", "language", "subject_id", "telegram_user_id", "time_zone"],
        "conversation_states": ["key", "name", "state"],
        "receipt_messages": ["chat_id", "key", "message_id", "shown_at"],  # ids, for edits
        "seen_deliveries": ["id", "seen_at"],
        "user_states": ["data", "telegram_user_id"],
    }


async def test_users_map_to_subjects_both_ways_and_can_be_forgotten(sessions: Sessions) -> None:
    user = ChatUser(telegram_user_id=BIG_ID, chat_id=BIG_ID, subject_id="sub_1", language="pl")
    await repo.save_user(sessions, user)
    await repo.save_state(sessions, BIG_ID, {"link": {"bank": "wisla"}})
    found = await repo.user_by_subject(sessions, "sub_1")
    assert found is not None and found.telegram_user_id == BIG_ID and found.language == "pl"
    assert await repo.load_state(sessions, BIG_ID) == {"link": {"bank": "wisla"}}
    await repo.forget_user(sessions, BIG_ID)
    assert await repo.get_user(sessions, BIG_ID) is None
    assert await repo.load_state(sessions, BIG_ID) == {}


async def test_a_key_is_new_once_until_forgotten_or_pruned(sessions: Sessions) -> None:
    assert await repo.first_time(sessions, "delivery:msg_1", 100)
    assert not await repo.first_time(sessions, "delivery:msg_1", 101)
    await repo.forget_seen(sessions, "delivery:msg_1")
    assert await repo.first_time(sessions, "delivery:msg_1", 102)
    await repo.prune_seen(sessions, before=200)
    assert await repo.first_time(sessions, "delivery:msg_1", 300)


async def test_conversation_states_survive_a_restart(sessions: Sessions) -> None:
    first = SqlPersistence(sessions)
    await first.update_conversation("link", (BIG_ID, BIG_ID), "scopes")
    await first.update_conversation("link", (1, 1), "bank")
    await first.update_conversation("link", (1, 1), None)
    await first.update_conversation("link", (BIG_ID, BIG_ID), "duration")
    again = SqlPersistence(sessions)
    assert await again.get_conversations("link") == {(BIG_ID, BIG_ID): "duration"}
    assert await again.get_conversations("other") == {}
    assert await again.get_user_data() == {} and await again.get_callback_data() is None


async def test_the_whole_bot_runs_on_postgresql(
    tmp_path: Path, sqlite_url: str, postgres_url: str
) -> None:
    system = await start_system(tmp_path, sqlite_url, bot_database_url=postgres_url)
    try:
        await link_bank(system, ALICE)
        reply = await system.say(ALICE, "/balance", lambda t: "balances" in t.lower())
        assert "Northwind" in reply["text"]
    finally:
        await stop_system(system)
