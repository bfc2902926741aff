"""Group commit of fraud alerts on PostgreSQL (several broker processes on one database).

Before, each fraud alert went through the ORM, one event per transaction: a pooled checkout
(a ping), the de-duplication row flushed, the consent read, the alert row looked up, the
subject's row lock, its chain head read, three inserts and the commit, each a round trip with a
greenlet hop and statement compilation (broker CPU about 14 ms an alert, 2 brokers at 200/s).
Here one writer task per process takes every fraud alert waiting (up to ``MAX_BATCH``) and
writes them in one transaction on a raw asyncpg connection of its own, five round trips per
batch whatever its size (``BEGIN``, three statements, ``COMMIT``):

1. the consents the events name (``unnest``), each with its subject's row lock taken
   ``FOR UPDATE SKIP LOCKED``: the same lock as :func:`consent.store.locks.lock_subject` and the
   access log's writer take, so a chain is never extended by two transactions at once, across
   processes too. A subject locked elsewhere is not waited for (so the order in which subjects
   are locked cannot deadlock): its events are put off to the next batch, and handed back to
   the usual path, which waits, after ``MAX_TRIES``. The subject's in-process audit lock is
   taken the same way (without waiting), so this process's own writers are not raced;
2. one statement of data-modifying CTEs: the de-duplication rows, ``INSERT … ON CONFLICT DO
   NOTHING RETURNING`` in (bank, jti) order (a jti already stored for that bank, by this or
   another process, or held uncommitted by another transaction and then committed, is a
   duplicate and writes nothing else; a replay within the batch likewise); the alert rows of
   the events stored now, ``ON CONFLICT DO NOTHING`` (one row per (consent, bank alert),
   whichever process got there first); the outbox rows (the minimized views, as
   :func:`consent.events.ingest.alert_message` makes them) of the alerts stored now;
3. the chain heads of the subjects alerted (read after their locks are held), then the
   access-log entries and ``NOTIFY`` with this broker's ``instance`` (delivered at commit: the
   other broker processes' relays look a moment later, :mod:`consent.outbox.relay`) in one
   statement.

Each bank is answered only after that commit (same outcomes as
:func:`consent.events.ingest.ingest`: "processed", "ignored", "duplicate"). Put off to the
next batch and made ready first (:meth:`EventWriter._ready`): an alert whose consent's account
handles are not in memory (loaded in one statement, :meth:`PostgresEventWriter._warm`; an
account seen for the first time gets its handle under the consent's advisory lock, so two
brokers never give it two). Handed back to the caller (the usual ORM path): other event kinds,
an event put off twice, every event of a batch whose transaction failed (rolled back: nothing
of it stored)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlmodel import SQLModel

from consent.events.batch import EventWriter, _Done, _Item, _result
from consent.events.ingest import FRAUD_ALERT, alert_allowed, alert_audit, alert_message
from consent.outbox.write import NOTIFY_CHANNEL
from consent.store.audit import COLUMNS, row_of
from consent.store.audit_writer import (
    PendingEntry,
    chained,
    postgres_chain_heads,
)
from consent.store.locks import SubjectLocks, registry
from consent.store.pgpool import PgConnections
from consent.store.tables import ConsentRow
from consent.vault.envelope import open_sealed

log = logging.getLogger(__name__)


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


_CONSENT = _table(ConsentRow)
_CONSENT_COLUMNS = list(_CONSENT.columns)
# 1. the consents the events name, each with its subject's row lock if free (SKIP LOCKED never
# waits, so the order in which subjects are locked cannot deadlock)
_CONSENTS_SQL = f"""
SELECT {", ".join(f"c.{c.name}" for c in _CONSENT_COLUMNS)}, l.subject_id IS NOT NULL
FROM consent AS c
JOIN unnest($1::text[], $2::text[]) AS k (bank_id, bank_consent_id)
  ON c.bank_id = k.bank_id AND c.bank_consent_id = k.bank_consent_id
LEFT JOIN LATERAL (
    SELECT s.subject_id FROM subject AS s WHERE s.subject_id = c.subject_id
    FOR UPDATE SKIP LOCKED
) AS l ON true
"""  # noqa: S608 - schema names
# the data keys and handles of consents (EventWriter._warm); a consent without a key (shredded)
# is not found
_HANDLES_SQL = """
SELECT k.consent_id, k.kek_version, k.wrapped, h.handle, h.account_ref
FROM consent_key AS k LEFT JOIN account_handle AS h ON h.consent_id = k.consent_id
WHERE k.consent_id = ANY($1::text[])
"""
# 2. in one statement: the events' de-duplication rows (in (bank, jti) order), the alert rows of
# the events stored now, the outbox rows of the alerts stored now; returns what was stored
_WRITE_SQL = """
WITH j AS (
    INSERT INTO processed_event (bank_id, jti, received_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
    ON CONFLICT DO NOTHING RETURNING bank_id, jti
), a AS (
    INSERT INTO fraud_alert (consent_id, alert_id, handle)
    SELECT u.consent_id, u.alert_id, u.handle
    FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
        AS u (consent_id, alert_id, handle, bank_id, jti)
    WHERE EXISTS (SELECT FROM j WHERE j.bank_id = u.bank_id AND j.jti = u.jti)
    ON CONFLICT DO NOTHING RETURNING consent_id, alert_id
), o AS (
    INSERT INTO outbox (id, client_id, subject_id, kind, payload, attempts, next_attempt_at,
                        created_at)
    SELECT u.id, u.client_id, u.subject_id, u.kind, u.payload, u.attempts, u.next_attempt_at,
           u.created_at
    FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int[],
                $15::timestamptz[], $16::timestamptz[], $4::text[], $5::text[])
        AS u (id, client_id, subject_id, kind, payload, attempts, next_attempt_at, created_at,
              consent_id, alert_id)
    WHERE EXISTS (SELECT FROM a WHERE a.consent_id = u.consent_id AND a.alert_id = u.alert_id)
)
SELECT true, bank_id, jti FROM j UNION ALL SELECT false, consent_id, alert_id FROM a
"""
# the outbox columns $9..$16 of _WRITE_SQL take, in order
_OUTBOX_COLUMNS = (
    "id",
    "client_id",
    "subject_id",
    "kind",
    "payload",
    "attempts",
    "next_attempt_at",
    "created_at",
)
# 3. the chain heads (consent.store.audit_writer.postgres_chain_heads), then 4. the entries
# and the relays' wake-up (delivered at commit)
_AUDIT_SQL = f"""
WITH e AS (
    INSERT INTO audit_entry ({", ".join(COLUMNS)})
    SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[],
                         $12::text[])
)
SELECT pg_notify('{NOTIFY_CHANNEL}', $13::text)
"""  # noqa: S608 - constant names


@dataclass
class _Alert:
    item: int  # index in the batch
    event: dict[str, Any]
    row: ConsentRow
    alert_id: str
    handle: str


@dataclass
class PostgresEventWriter(EventWriter):
    """One writer task and one asyncpg connection (see the module's docstring)."""

    dsn: str
    # the in-process audit locks (default: those of the broker's sessions)
    locks: SubjectLocks | None = field(default=None, kw_only=True)
    subject_skips: int = field(default=0, kw_only=True)  # events put off for a locked subject
    _conns: PgConnections | None = field(default=None, kw_only=True)

    def takes(self, kind: str) -> bool:
        return kind == FRAUD_ALERT

    def start(self) -> None:
        self._conns = PgConnections(self.dsn, 1)
        super().start()

    async def _dispose(self) -> None:
        if self._conns is not None:
            await self._conns.close()

    async def _warm(self, consent_ids: list[str]) -> None:
        """:meth:`EventWriter._warm` in one statement on the writer's own connection (idle
        between batches, when this runs), without a pooled ORM session."""
        broker = self.broker
        cold = [cid for cid in consent_ids if cid not in broker.handles]
        if not cold or broker.data_keys is None or self._conns is None:
            return
        async with self._conns.using() as conn:
            found = await conn.fetch(_HANDLES_SQL, cold)
        maps: dict[str, dict[str, str]] = {}
        for cid, kek_version, wrapped, handle, ref in found:
            key = broker.open_data_key(cid, kek_version, wrapped)
            known = maps.setdefault(cid, {})
            if handle is not None:
                account = open_sealed(key, ref, consent_id=cid, field="account_id")
                known[account.decode()] = handle
        for cid, known in maps.items():
            broker.handles.setdefault(cid, known)

    async def _commit_batch(self, batch: list[_Item]) -> list[_Done]:
        assert self._conns is not None
        locks = self.locks or registry(self.broker.sessions) or SubjectLocks()
        held: dict[str, asyncio.Lock] = {}
        try:
            async with self._conns.using() as conn:
                return await self._commit(conn, batch, locks, held)
        finally:
            for lock in held.values():
                lock.release()

    async def _commit(
        self, conn: Any, batch: list[_Item], locks: SubjectLocks, held: dict[str, asyncio.Lock]
    ) -> list[_Done]:
        broker = self.broker
        now: datetime = broker.clock()
        done: list[_Done | None] = [None] * len(batch)
        keys = sorted(
            {
                (item.bank_id, ev["consent_id"])
                for item in batch
                for ev in item.claims["events"].values()
                if isinstance(ev.get("consent_id"), str)
            }
        )
        await conn.execute("BEGIN")
        consents: dict[tuple[str, str], ConsentRow] = {}
        locked: set[str] = set()  # subjects whose row lock this transaction holds
        if keys:
            width = len(_CONSENT_COLUMNS)
            for r in await conn.fetch(_CONSENTS_SQL, [k[0] for k in keys], [k[1] for k in keys]):
                read = ConsentRow(
                    **{c.key: _result(c, v) for c, v in zip(_CONSENT_COLUMNS, r, strict=False)}
                )
                consents[(read.bank_id, str(read.bank_consent_id))] = read
                if r[width]:
                    locked.add(read.subject_id)
        # what each event would write, read first (nothing is written for one put off)
        wanted: dict[int, list[_Alert]] = {}
        for n, item in enumerate(batch):
            mine: list[_Alert] = []
            for ev in item.claims["events"].values():
                cid = ev.get("consent_id")
                row = consents.get((item.bank_id, cid)) if isinstance(cid, str) else None
                if row is None or not alert_allowed(broker, item.bank_id, row, now):
                    continue
                alert_id = str(ev.get("alert_id", ""))[:100]
                if not alert_id:
                    continue
                account = str(ev.get("account_id", ""))
                handle = broker.handles.get(row.consent_id, {}).get(account)
                if handle is None:
                    done[n] = _Done(None, again=True, handles_of=row, account=account)
                    break
                subject = row.subject_id
                if subject not in locked:  # another process's transaction holds it
                    self.subject_skips += 1
                    done[n] = _Done(None, again=True)
                    break
                if subject not in held:
                    lock = locks.lock(subject)
                    if lock.locked():  # another transaction of this process appends to it
                        done[n] = _Done(None, again=True)
                        break
                    await lock.acquire()  # free: returns at once
                    held[subject] = lock
                mine.append(_Alert(n, ev, row, alert_id, handle))
            if done[n] is None:
                wanted[n] = mine
        # the first event of each (bank, jti) is stored, if that jti is not yet; the others
        # (a replay within the batch) are duplicates
        firsts: dict[tuple[str, str], int] = {}
        for n in wanted:
            firsts.setdefault((batch[n].bank_id, str(batch[n].claims["jti"])[:100]), n)
        # one alert row per (consent, bank alert): the first in the batch, if none is stored
        unique: dict[tuple[str, str], tuple[_Alert, tuple[str, str]]] = {}
        for key, n in firsts.items():
            for a in wanted[n]:
                unique.setdefault((a.row.consent_id, a.alert_id), (a, key))
        # (the alert's opaque handle, its outbox row's columns, the view, its time)
        views: dict[tuple[str, str], tuple[str, dict[str, Any], dict[str, Any], datetime]] = {}
        for key, (a, _) in unique.items():
            # each its own time, as one by one: a subject's messages go out in this order
            at = broker.clock()
            view, opaque, message = alert_message(
                broker, batch[a.item].bank_id, a.event, a.row, a.alert_id, a.handle, at
            )
            views[key] = (opaque, message, view, at)
        fresh: set[tuple[str, str]] = set()
        stored: set[tuple[str, str]] = set()
        if firsts:
            jtis = sorted(firsts)  # in key order: two writers never wait on each other in a cycle
            alerts = sorted(unique)
            outbox = [views[k][1] for k in alerts]
            for is_jti, x, y in await conn.fetch(
                _WRITE_SQL,
                [k[0] for k in jtis],
                [k[1] for k in jtis],
                [now] * len(jtis),
                [k[0] for k in alerts],
                [k[1] for k in alerts],
                [views[k][0] for k in alerts],
                [unique[k][1][0] for k in alerts],
                [unique[k][1][1] for k in alerts],
                *([o[c] for o in outbox] for c in _OUTBOX_COLUMNS),
            ):
                (fresh if is_jti else stored).add((x, y))
        for n in wanted:
            key = (batch[n].bank_id, str(batch[n].claims["jti"])[:100])
            done[n] = _Done("ignored" if key in fresh and firsts[key] == n else "duplicate")
        pushed = [(k, a) for k, (a, _) in unique.items() if k in stored]  # in the batch's order
        if pushed:
            pendings: dict[str, list[PendingEntry]] = {}
            for key, a in pushed:
                _, _, view, at = views[key]
                entry = alert_audit(a.row, view, at)
                pendings.setdefault(a.row.subject_id, []).append(
                    PendingEntry(**{**entry, "fields": tuple(entry["fields"])})
                )
                done[a.item] = _Done("processed")
            ids = sorted(pendings)
            entries = chained(await postgres_chain_heads(conn, ids), pendings)
            rows = [row_of(e) for sid in ids for e in entries[sid]]
            await conn.execute(
                _AUDIT_SQL, *(list(c) for c in zip(*rows, strict=True)), broker.instance
            )
        await conn.execute("COMMIT")
        return [d if d is not None else _Done(None) for d in done]
