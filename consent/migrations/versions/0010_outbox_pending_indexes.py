"""outbox: indexes over the undelivered rows, for the relay's claim

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 08:00:00

The relay claims, oldest first, each subject's oldest undelivered row that is due. Delivered rows
stay for the retention period (a day by default: millions of rows at a steady alert rate), so
both lookups are partial indexes over ``delivered_at IS NULL`` only: what is due, and what of
a subject is still waiting (``consent.outbox.relay``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("delivered_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_pending_due",
        "outbox",
        ["next_attempt_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_outbox_pending_subject",
        "outbox",
        ["subject_id", "created_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_subject", table_name="outbox")
    op.drop_index("ix_outbox_pending_due", table_name="outbox")
