"""fraud alerts per consent

A bank alerts every consent that covers the flagged account: two platform users (or two
platform clients) linked to the same bank customer each get the alert. The bank's alert id is
therefore no longer a key on its own: an alert row is keyed by (consent, bank alert id). Rows
already stored keep their handle, so buttons already in a chat keep working.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 07:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPY = "INSERT INTO fraud_alert_new (alert_id, handle, consent_id, answer) SELECT alert_id, handle, consent_id, answer FROM fraud_alert"  # noqa: E501


def _table(name: str, key: Sequence[str]) -> None:
    op.create_table(
        name,
        sa.Column("alert_id", sa.String(length=100), nullable=False),
        sa.Column("handle", sa.String(length=100), nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(["consent_id"], ["consent.consent_id"]),
        sa.PrimaryKeyConstraint(*key),
    )


def _swap(key: Sequence[str]) -> None:
    """Rebuild ``fraud_alert`` with primary key ``key``, the same way on SQLite and PostgreSQL
    (a new table, the rows copied, the old one dropped and the new one renamed)."""
    _table("fraud_alert_new", key)
    op.execute(COPY)
    with op.batch_alter_table("fraud_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fraud_alert_handle"))
        batch_op.drop_index(batch_op.f("ix_fraud_alert_consent_id"))
    op.drop_table("fraud_alert")
    op.rename_table("fraud_alert_new", "fraud_alert")
    if op.get_bind().dialect.name == "postgresql":  # keep the conventional constraint names
        for name in ("pkey", "consent_id_fkey"):
            op.execute(
                f"ALTER TABLE fraud_alert RENAME CONSTRAINT fraud_alert_new_{name} "
                f"TO fraud_alert_{name}"
            )
    with op.batch_alter_table("fraud_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fraud_alert_handle"), ["handle"], unique=True)
        batch_op.create_index(batch_op.f("ix_fraud_alert_consent_id"), ["consent_id"], unique=False)


def upgrade() -> None:
    _swap(["consent_id", "alert_id"])


def downgrade() -> None:
    # one row per bank alert again: the first consent's row of each alert is kept
    op.execute(
        "DELETE FROM fraud_alert WHERE EXISTS (SELECT 1 FROM fraud_alert AS older "
        "WHERE older.alert_id = fraud_alert.alert_id AND older.consent_id < fraud_alert.consent_id)"
    )
    _swap(["alert_id"])
