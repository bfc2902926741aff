"""receipt_work: a claim lease, so one broker process of several fetches each account

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 09:10:00

On PostgreSQL several broker processes share the receipt work: a process claims due rows with
``FOR UPDATE SKIP LOCKED`` and writes ``claimed_until`` in the same short transaction; no other
process claims the row until the lease runs out (``consent.receipts.worker``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("receipt_work", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("receipt_work", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
