"""last known balances, sealed per account

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 05:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "last_balance",
        sa.Column("handle", sa.String(length=40), nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consent_id"], ["consent.consent_id"]),
        sa.ForeignKeyConstraint(["handle"], ["account_handle.handle"]),
        sa.PrimaryKeyConstraint("handle"),
    )
    with op.batch_alter_table("last_balance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_last_balance_consent_id"), ["consent_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("last_balance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_last_balance_consent_id"))
    op.drop_table("last_balance")
