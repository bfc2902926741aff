"""outbox: the undelivered rows in claim order, so the relay's claim stops after its batch

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 13:30:00

The relay claims each subject's oldest undelivered row that is due, oldest first, a batch at a
time. Ordered through ``ix_outbox_pending_due`` (``next_attempt_at``), PostgreSQL read and
sorted every due row for each claim: under a backlog the claim grew with it. Walking this index
in ``(created_at, id)`` order, it stops once the batch is found (``consent.outbox.relay``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("delivered_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_pending_order",
        "outbox",
        ["created_at", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_order", table_name="outbox")
