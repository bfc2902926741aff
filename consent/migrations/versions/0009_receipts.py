"""real-time receipts: per-account choice, fetch work, sealed receipts, quiet hours

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "receipt_choice",
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consent_id"], ["consent.consent_id"]),
        sa.PrimaryKeyConstraint("consent_id", "account"),
    )
    op.create_table(
        "receipt_work",
        sa.Column("handle", sa.String(length=40), nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("seen_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["handle"], ["account_handle.handle"]),
        sa.ForeignKeyConstraint(["consent_id"], ["consent.consent_id"]),
        sa.PrimaryKeyConstraint("handle"),
    )
    with op.batch_alter_table("receipt_work", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipt_work_consent_id"), ["consent_id"])
        batch_op.create_index(batch_op.f("ix_receipt_work_due_at"), ["due_at"])
    op.create_table(
        "receipt",
        sa.Column("receipt_id", sa.String(length=40), nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("handle", sa.String(length=40), nullable=False),
        sa.Column("tx_key", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("message_key", sa.String(length=40), nullable=True),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consent_id"], ["consent.consent_id"]),
        sa.PrimaryKeyConstraint("receipt_id"),
        sa.UniqueConstraint("consent_id", "tx_key"),
    )
    with op.batch_alter_table("receipt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipt_consent_id"), ["consent_id"])
        batch_op.create_index(batch_op.f("ix_receipt_subject_id"), ["subject_id"])
        batch_op.create_index(batch_op.f("ix_receipt_message_key"), ["message_key"])
    op.create_table(
        "receipt_quiet_hours",
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.subject_id"]),
        sa.PrimaryKeyConstraint("subject_id"),
    )


def downgrade() -> None:
    op.drop_table("receipt_quiet_hours")
    with op.batch_alter_table("receipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipt_message_key"))
        batch_op.drop_index(batch_op.f("ix_receipt_subject_id"))
        batch_op.drop_index(batch_op.f("ix_receipt_consent_id"))
    op.drop_table("receipt")
    with op.batch_alter_table("receipt_work", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipt_work_due_at"))
        batch_op.drop_index(batch_op.f("ix_receipt_work_consent_id"))
    op.drop_table("receipt_work")
    op.drop_table("receipt_choice")
