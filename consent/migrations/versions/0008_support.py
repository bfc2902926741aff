"""support chat: conversations with a person at the bank, their messages sealed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 07:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "support_conversation",
        sa.Column("handle", sa.String(length=40), nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("bank_conversation_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["consent_id"], ["consent.consent_id"]),
        sa.PrimaryKeyConstraint("handle"),
    )
    with op.batch_alter_table("support_conversation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_support_conversation_consent_id"), ["consent_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_support_conversation_bank_conversation_id"),
            ["bank_conversation_id"],
            unique=False,
        )
    op.create_table(
        "support_message",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("conversation", sa.String(length=40), nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("bank_message_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consent_id"], ["consent.consent_id"]),
        sa.ForeignKeyConstraint(["conversation"], ["support_conversation.handle"]),
        sa.PrimaryKeyConstraint("message_id"),
        sa.UniqueConstraint("consent_id", "bank_message_id"),
    )
    with op.batch_alter_table("support_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_support_message_conversation"), ["conversation"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_support_message_consent_id"), ["consent_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("support_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_support_message_consent_id"))
        batch_op.drop_index(batch_op.f("ix_support_message_conversation"))
    op.drop_table("support_message")
    with op.batch_alter_table("support_conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_support_conversation_bank_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_support_conversation_consent_id"))
    op.drop_table("support_conversation")
