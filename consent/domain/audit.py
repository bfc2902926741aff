"""The access log: append-only, each entry hash-chained to the previous one of its subject."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int  # 1-based position in the subject's chain
    subject_id: str
    client_id: str
    action: str  # e.g. "read", "consent.create", "consent.revoke"
    scope: str | None
    purpose: str
    fields: tuple[str, ...]  # the fields returned (empty when denied)
    outcome: str  # "allowed" | "denied"
    reason: str
    at: datetime
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


def genesis_hash(subject_id: str) -> str:
    """The ``prev_hash`` of a subject's first entry."""
    return hashlib.sha256(f"chatbank-audit-genesis:{subject_id}".encode()).hexdigest()


def _digest(
    seq: int,
    subject_id: str,
    client_id: str,
    action: str,
    scope: str | None,
    purpose: str,
    fields: tuple[str, ...],
    outcome: str,
    reason: str,
    at: datetime,
    prev_hash: str,
) -> str:
    canonical = json.dumps(
        [
            seq,
            subject_id,
            client_id,
            action,
            scope,
            purpose,
            list(fields),
            outcome,
            reason,
            at.isoformat(),
            prev_hash,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def append_entry(
    prev: AuditEntry | None,
    *,
    subject_id: str,
    client_id: str,
    action: str,
    scope: str | None,
    purpose: str,
    fields: Sequence[str],
    outcome: str,
    reason: str,
    at: datetime,
) -> AuditEntry:
    """The next entry of ``subject_id``'s chain after ``prev`` (None for the first)."""
    if prev is not None and prev.subject_id != subject_id:
        raise ValueError("an entry chains only to the same subject's previous entry")
    if outcome not in ("allowed", "denied"):
        raise ValueError("outcome must be 'allowed' or 'denied'")
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = genesis_hash(subject_id) if prev is None else prev.entry_hash
    fields_t = tuple(fields)
    digest = _digest(
        seq, subject_id, client_id, action, scope, purpose, fields_t, outcome, reason, at, prev_hash
    )
    return AuditEntry(
        seq,
        subject_id,
        client_id,
        action,
        scope,
        purpose,
        fields_t,
        outcome,
        reason,
        at,
        prev_hash,
        digest,
    )


def verify_chain(entries: Sequence[AuditEntry]) -> ChainReport:
    """Check a subject's whole chain, in order: any edited, removed, inserted or reordered entry
    breaks it, and the report names the first entry where it breaks."""
    expected_prev: str | None = None
    for index, e in enumerate(entries, start=1):
        if expected_prev is None:
            expected_prev = genesis_hash(e.subject_id)
        if e.seq != index:
            return ChainReport(
                False, index - 1, e.seq, f"entry {index} has sequence number {e.seq}"
            )
        if e.prev_hash != expected_prev:
            return ChainReport(False, index - 1, e.seq, "does not follow the previous entry")
        recomputed = _digest(
            e.seq,
            e.subject_id,
            e.client_id,
            e.action,
            e.scope,
            e.purpose,
            e.fields,
            e.outcome,
            e.reason,
            e.at,
            e.prev_hash,
        )
        if recomputed != e.entry_hash:
            return ChainReport(False, index - 1, e.seq, "content does not match its hash")
        expected_prev = e.entry_hash
    return ChainReport(True, len(entries))
