"""The balances read reuses a consent row's parsed form only while the row reads back exactly the
same: whatever changes in the database (status, scopes, expiry, a re-wrapped key, a refreshed
token), the next read parses it anew, and the answer is always what parsing the rows gives."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from consent.service import reads
from consent.service.broker import Broker

COLUMNS = (
    "consent_id",
    "subject_id",
    "client_id",
    "bank_id",
    "scopes",
    "purpose",
    "status",
    "created_at",
    "expires_at",
    "authorized_at",
    "ended_at",
    "kek_version",
    "wrapped",
    "blob",
)


@dataclass
class FakeReader:
    rows: list[sqlite3.Row] = field(default_factory=list)

    async def authorized(self, subject_id: str) -> Sequence[Any]:
        return self.rows


@dataclass
class FakeBroker:
    reader: FakeReader
    parsed_rows: dict[str, tuple[tuple[Any, ...], Any]] = field(default_factory=dict)


def _rows(values: list[tuple[Any, ...]]) -> list[sqlite3.Row]:
    """Real ``sqlite3.Row`` objects (what the SQLite reader returns)."""
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.execute(f"CREATE TABLE t ({', '.join(COLUMNS)})")
    marks = ", ".join("?" * len(COLUMNS))
    conn.executemany(f"INSERT INTO t VALUES ({marks})", values)  # noqa: S608 - constants
    rows = conn.execute("SELECT * FROM t ORDER BY rowid").fetchall()
    conn.close()
    return rows


row_values = st.tuples(
    st.sampled_from(["c1", "c2", "c3"]),
    st.sampled_from(["balances", "balances,transactions", "transactions"]),
    st.sampled_from(["authorized", "revoked", "expired"]),
    st.sampled_from(["2027-01-01 00:00:00.000000", "2026-12-01 00:00:00.000000"]),
    st.sampled_from([None, "2026-11-30 10:00:00.000000"]),
    st.sampled_from([1, 2]),
    st.binary(min_size=0, max_size=3),
    st.one_of(st.none(), st.binary(min_size=1, max_size=3)),
).map(
    lambda v: (
        v[0],
        "sub_1",
        "pc_1",
        "northwind",
        v[1],
        "chat-service",
        v[2],
        "2026-11-01 00:00:00.000000",
        v[3],
        "2026-11-01 00:01:00.000000",
        v[4],
        v[5],
        v[6],
        v[7],
    )
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(row_values, max_size=3, unique_by=lambda v: v[0]), max_size=6))
async def test_every_read_equals_parsing_its_rows_afresh(reads_seen: list[list[Any]]) -> None:
    broker = FakeBroker(FakeReader())
    for values in reads_seen:
        broker.reader.rows = _rows(values)
        got = await reads.authorized_consents(cast(Broker, broker), "sub_1")
        assert got == [reads._parsed(r) for r in broker.reader.rows]
        assert len(broker.parsed_rows) <= 3  # one per consent


async def test_a_changed_row_is_parsed_again_and_the_memo_stays_bounded(
    monkeypatch: Any,
) -> None:
    broker = FakeBroker(FakeReader())
    base = ("c1", "sub_1", "pc_1", "northwind", "balances", "chat-service", "authorized")
    times = ("2026-11-01 00:00:00", "2027-01-01 00:00:00", "2026-11-01 00:01:00", None)
    broker.reader.rows = _rows([(*base, *times, 1, b"k", b"t")])
    first = await reads.authorized_consents(cast(Broker, broker), "sub_1")
    again = await reads.authorized_consents(cast(Broker, broker), "sub_1")
    assert again[0] is first[0]  # the same row: the same parsed object
    broker.reader.rows = _rows([(*base, *times, 2, b"k2", b"t")])  # the key was re-wrapped
    rewrapped = await reads.authorized_consents(cast(Broker, broker), "sub_1")
    assert rewrapped[0].kek_version == 2 and rewrapped[0].wrapped_key == b"k2"
    monkeypatch.setattr(reads, "PARSED_ROWS", 2)
    for i in range(5):
        broker.reader.rows = _rows([(f"c{i + 10}", *base[1:], *times, 1, b"k", b"t")])
        await reads.authorized_consents(cast(Broker, broker), "sub_1")
    assert len(broker.parsed_rows) == 2
