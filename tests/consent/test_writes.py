"""The write gate: one write transaction at a time per process on SQLite, none on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from consent.store.writes import WriteGate


async def _overlaps(gate: WriteGate) -> bool:
    inside = 0
    most = 0

    async def write() -> None:
        nonlocal inside, most
        async with gate():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(write() for _ in range(5)))
    return most > 1


@pytest.mark.parametrize(("dialect", "overlap"), [("sqlite", False), ("postgresql", True)])
async def test_sqlite_writers_of_one_process_take_turns(dialect: str, overlap: bool) -> None:
    assert await _overlaps(WriteGate(dialect)) is overlap


async def test_writers_go_in_the_order_they_came() -> None:
    gate, order = WriteGate("sqlite"), []

    async def write(n: int) -> None:
        async with gate():
            await asyncio.sleep(0)
            order.append(n)

    await asyncio.gather(*(write(n) for n in range(10)))
    assert order == list(range(10))
