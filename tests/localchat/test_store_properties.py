"""Invariants of the update queue, checked with Hypothesis."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from localchat.botapi import get_updates
from localchat.settings import DEFAULT_USERS
from localchat.store import Store


def _store_with(count: int) -> Store:
    store = Store(bot={"id": 1, "is_bot": True}, users={u.id: u for u in DEFAULT_USERS})
    for n in range(count):
        msg = store.add_message(1001, f"m{n}", from_bot=False)
        store.add_update({"message": store.message_json(msg)})
    return store


@given(count=st.integers(0, 20), offset=st.integers(0, 25), limit=st.integers(1, 100))
def test_get_updates_returns_exactly_the_unacknowledged_updates_in_order(
    count: int, offset: int, limit: int
) -> None:
    store = _store_with(count)
    params = {"offset": offset, "limit": limit, "timeout": 0}
    result = asyncio.run(get_updates(store, params))
    ids = [u["update_id"] for u in result]
    expected = [i for i in range(1, count + 1) if i >= offset][:limit]
    assert ids == expected
