"""receipt message ids (for edits)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 08:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "receipt_messages",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("shown_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("receipt_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipt_messages_chat_id"), ["chat_id"])
        batch_op.create_index(batch_op.f("ix_receipt_messages_shown_at"), ["shown_at"])


def downgrade() -> None:
    with op.batch_alter_table("receipt_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipt_messages_shown_at"))
        batch_op.drop_index(batch_op.f("ix_receipt_messages_chat_id"))
    op.drop_table("receipt_messages")
