"""``chatbank outbox dead-letters``: what the relay gave up on, read from the broker's database."""

from __future__ import annotations

from consent.outbox import deadletter
from consent.store.db import make_engine, session_factory


async def print_dead_letters(database_url: str, limit: int) -> int:
    engine = make_engine(database_url)
    try:
        letters = await deadletter.listing(session_factory(engine), limit)
        total = await deadletter.count(session_factory(engine))
    finally:
        await engine.dispose()
    print(f"{total} dead letter(s); newest {len(letters)}:")
    for d in letters:
        print(
            f"{d.failed_at:%Y-%m-%d %H:%M:%S} {d.message_id} {d.kind} to {d.client_id} "
            f"for {d.subject_id} after {d.attempts} attempt(s): {d.reason}"
        )
    return 0
