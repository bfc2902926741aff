"""opaque fraud-alert handles

The platform is given an opaque handle for each fraud alert instead of the bank's own alert id;
alerts delivered before this revision keep their old id as their handle, so buttons already in
a chat keep working.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 05:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fraud_alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handle", sa.String(length=100), nullable=True))
    op.execute("UPDATE fraud_alert SET handle = alert_id")
    with op.batch_alter_table("fraud_alert", schema=None) as batch_op:
        batch_op.alter_column("handle", existing_type=sa.String(length=100), nullable=False)
        batch_op.create_index(batch_op.f("ix_fraud_alert_handle"), ["handle"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("fraud_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fraud_alert_handle"))
        batch_op.drop_column("handle")
