"""What a bank learns at run time, kept in SQLite under ``BANK_DATA_DIR`` so a restart changes
nothing for anyone: registered clients, consents, tokens and authorization codes, card states,
injected transactions and fraud alerts. The generated world (customers, accounts, cards, seeded
histories) is not stored: the same seed builds it again, and reads stay in memory.

Every change is written through at once (one small transaction; WAL, ``synchronous=NORMAL``), so
even a ``kill -9`` keeps what was answered. Without a data folder the bank keeps all of it in
memory, as before. Records are JSON of the bank's own dataclasses (pydantic does both ways).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter

T = TypeVar("T")
FILE = "bank.db"

# kinds of record; the key is unique within a kind
CLIENT, CONSENT, CARD, TRANSACTION, ALERT = "client", "consent", "card", "transaction", "alert"
ACCESS, REFRESH, CODE = "access", "refresh", "code"


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


class Disk:
    """A write-through record store: ``put`` and ``drop`` as things change, ``load`` at start."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(folder / FILE, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS record ("
            " kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,"
            " PRIMARY KEY (kind, key))"
        )

    def put(self, kind: str, key: str, value: object) -> None:
        data = _adapter(type(value)).dump_json(value).decode()
        self._db.execute(
            "INSERT INTO record (kind, key, data) VALUES (?, ?, ?)"
            " ON CONFLICT (kind, key) DO UPDATE SET data = excluded.data",
            (kind, key, data),
        )

    def drop(self, kind: str, keys: list[str]) -> None:
        self._db.executemany(
            "DELETE FROM record WHERE kind = ? AND key = ?", [(kind, k) for k in keys]
        )

    def load(self, kind: str, as_type: type[T]) -> Iterator[tuple[str, T]]:
        """Every record of ``kind`` as (key, value), in the order they were first written."""
        adapter = _adapter(as_type)
        query = "SELECT key, data FROM record WHERE kind = ? ORDER BY rowid"
        for key, data in self._db.execute(query, (kind,)).fetchall():
            yield key, adapter.validate_json(data)

    def close(self) -> None:
        self._db.close()
