"""dead letters, event jti de-duplication per bank, consents needing re-authorization

Revision ID: d3l1v3ry0003
Revises: 0003
Create Date: 2026-12-02 05:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d3l1v3ry0003"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_dead_letter",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox_dead_letter", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_dead_letter_client_id"), ["client_id"], unique=False
        )
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "needs_reauthorization", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    # a jti is unique per issuer only: the key becomes (bank_id, jti); the table is rebuilt the
    # same way on both databases (SQLite cannot alter a primary key), keeping what it held
    _rebuild_processed_event(["bank_id", "jti"])


def _rebuild_processed_event(key: list[str]) -> None:
    op.create_table(
        "processed_event_new",
        sa.Column("bank_id", sa.String(length=40), nullable=False),
        sa.Column("jti", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*key, name=f"pk_processed_event_{len(key)}"),
    )
    op.execute(
        "INSERT INTO processed_event_new (bank_id, jti, received_at) "
        "SELECT bank_id, jti, received_at FROM processed_event"
    )
    op.drop_table("processed_event")
    op.rename_table("processed_event_new", "processed_event")


def downgrade() -> None:
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_column("needs_reauthorization")
    _rebuild_processed_event(["jti"])  # fails if two banks share a jti by then, as it must
    with op.batch_alter_table("outbox_dead_letter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_dead_letter_client_id"))
    op.drop_table("outbox_dead_letter")
