"""Queue a message for a platform client inside the caller's transaction."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Protocol

from consent.store.tables import OutboxRow

# PostgreSQL: notified when outbox rows commit (by the group commit of bank events,
# consent.events.pgbatch), so every broker process's relay claims them at once, not at its next
# poll (consent.outbox.relay)
NOTIFY_CHANNEL = "chatbank_outbox"


class Adds(Protocol):
    """Where a row is added: a SQLAlchemy session, or a writer of plain rows
    (:class:`consent.events.batch.Rows`)."""

    def add(self, instance: Any, /) -> None: ...


def outbox_values(
    *, client_id: str, subject_id: str, kind: str, data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The columns of a new outbox row (:func:`enqueue`; the group commit of fraud alerts on
    PostgreSQL inserts them as they are, without building an ORM object per row)."""
    return {
        "id": f"msg_{uuid.uuid4().hex}",
        "client_id": client_id,
        "subject_id": subject_id,
        "kind": kind,
        "payload": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def enqueue(
    session: Adds,
    *,
    client_id: str,
    subject_id: str,
    kind: str,
    data: dict[str, Any],
    now: datetime,
) -> str:
    """Add an outbox row (committed with the caller's transaction, or not at all)."""
    values = outbox_values(
        client_id=client_id, subject_id=subject_id, kind=kind, data=data, now=now
    )
    session.add(OutboxRow(**values))
    return str(values["id"])
