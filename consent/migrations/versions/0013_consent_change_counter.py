"""SQLite: a counter of changes to what the balances read returns, kept by triggers

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 16:30:00

The balances read (``consent.store.fastread.SqliteReader``) reads the subject's authorized
consents with their keys and sealed access tokens on every request. Every access-log commit
invalidates the reader's page cache, so that query reads its pages again each time (about 26 µs
against 9 µs for one row of one small table, measured with a commit between reads). These
triggers add one to ``consent_change.n`` in the same transaction as any insert, update or
delete of ``consent``, ``consent_key`` or ``sealed_secret``, whichever connection or process
makes it; while ``n`` reads back unchanged, the reader may answer from the rows it read at that
value. PostgreSQL keeps reading the rows themselves (one round trip either way, and a counter
row would serialize every consent write across processes): nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("consent", "consent_key", "sealed_secret")
EVENTS = ("INSERT", "UPDATE", "DELETE")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if not _sqlite():
        return
    op.execute(
        "CREATE TABLE consent_change (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)"
    )
    op.execute("INSERT INTO consent_change (id, n) VALUES (1, 0)")
    for table in TABLES:
        for event in EVENTS:
            op.execute(
                f"CREATE TRIGGER tr_{table}_{event.lower()}_counts AFTER {event} ON {table} "  # noqa: S608 - constant names
                "BEGIN UPDATE consent_change SET n = n + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    if not _sqlite():
        return
    for table in TABLES:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_{event.lower()}_counts")
    op.execute("DROP TABLE IF EXISTS consent_change")
