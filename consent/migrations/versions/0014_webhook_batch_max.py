"""platform_client.webhook_batch_max: how many outbox messages one webhook POST may carry

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 16:30:00

Opt-in batched delivery (``consent.outbox.relay``): a client registered with
``webhook_batch_max`` > 1 receives ``{"events": [...]}`` bodies of up to that many messages. The
server default 1 keeps every client registered before this migration on one message per POST,
the body it has always received.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN on both databases: batch mode would rebuild the table on SQLite, which
    # its foreign keys (subject → platform_client) refuse
    op.add_column(
        "platform_client",
        sa.Column("webhook_batch_max", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )


def downgrade() -> None:
    # SQLite (3.35+) and PostgreSQL both drop a column in place
    op.execute("ALTER TABLE platform_client DROP COLUMN webhook_batch_max")
