"""Group commit of fraud alerts on PostgreSQL (several broker processes on one database).

Before, each fraud alert went through the ORM, one event per transaction: a pooled checkout
(a ping), the de-duplication row flushed, the consent read, the alert row looked up, the
subject's row lock, its chain head read, three inserts and the commit, each a round trip with a
greenlet hop and statement compilation (broker CPU about 14 ms an alert, 2 brokers at 200/s).
Here one writer task per process takes every fraud alert waiting (up to ``MAX_BATCH``) and
writes them in one transaction on a raw asyncpg connection of its own, a fixed handful of
statements per batch whatever its size:

1. the consents the events name (one ``SELECT`` over ``unnest``);
2. the row locks of their subjects, ``ORDER BY subject_id FOR UPDATE SKIP LOCKED``: the same
   locks as :func:`consent.store.locks.lock_subject` and the access log's writer, so a chain is
   never extended by two transactions at once, across processes too. A subject locked
   elsewhere is not waited for: its events are put off to the next batch (handed back to the
   usual path, which waits, after ``MAX_TRIES``). The subject's in-process audit lock is taken
   the same way (without waiting) before, so this process's own writers are not raced;
3. the de-duplication rows, ``INSERT … ON CONFLICT DO NOTHING RETURNING`` in (bank, jti)
   order: a jti already stored for that bank, committed by this or another process (waited for
   if another transaction holds it uncommitted), is a duplicate and writes nothing else; a
   replay within the batch likewise;
4. the alert rows, ``ON CONFLICT DO NOTHING RETURNING``: one row per (consent, bank alert),
   whichever process got there first;
5. the chain heads of the subjects alerted (read after their locks are held);
6. the outbox rows (the minimized views, as :func:`consent.events.ingest.queue_alert` builds
   them) and the access-log entries, then ``NOTIFY`` (delivered at commit: the relays of the
   other broker processes wake, :mod:`consent.outbox.relay`) and ``COMMIT``.

Each bank is answered only after that commit (same outcomes as
:func:`consent.events.ingest.ingest`: "processed", "ignored", "duplicate"). Put off to the
next batch and made ready first (:meth:`EventWriter._ready`): an alert whose consent's account
handles are not in memory. Handed back to the caller (the usual ORM path): other event kinds,
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
from consent.events.ingest import FRAUD_ALERT, alert_allowed, alert_audit, queue_alert
from consent.outbox.write import NOTIFY_CHANNEL
from consent.store.audit import row_of
from consent.store.audit_writer import (
    _PG_INSERT_SQL,
    PendingEntry,
    _rolled_back,
    chained,
    postgres_chain_heads,
)
from consent.store.locks import SubjectLocks, registry
from consent.store.pgpool import PgConnections
from consent.store.tables import AlertRow, ConsentRow, OutboxRow

log = logging.getLogger(__name__)


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


_CONSENT = _table(ConsentRow)
_CONSENT_COLUMNS = list(_CONSENT.columns)
_CONSENTS_SQL = f"""
SELECT {", ".join(f"c.{c.name}" for c in _CONSENT_COLUMNS)}
FROM consent AS c
JOIN unnest($1::text[], $2::text[]) AS k (bank_id, bank_consent_id)
  ON c.bank_id = k.bank_id AND c.bank_consent_id = k.bank_consent_id
"""  # noqa: S608 - schema names
_LOCK_SQL = """
SELECT subject_id FROM subject WHERE subject_id = ANY($1::text[])
ORDER BY subject_id FOR UPDATE SKIP LOCKED
"""
_JTI_SQL = """
INSERT INTO processed_event (bank_id, jti, received_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
ON CONFLICT DO NOTHING RETURNING bank_id, jti
"""
_ALERT_SQL = """
INSERT INTO fraud_alert (consent_id, alert_id, handle)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT DO NOTHING RETURNING consent_id, alert_id
"""
_OUTBOX_SQL = """
INSERT INTO outbox (id, client_id, subject_id, kind, payload, attempts, next_attempt_at,
                    created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                     $7::timestamptz[], $8::timestamptz[])
"""


class _Collect:
    """Rows :func:`queue_alert` adds, kept to be inserted together."""

    def __init__(self) -> None:
        self.rows: list[SQLModel] = []

    def add(self, instance: Any, /) -> None:
        self.rows.append(instance)


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

    async def _commit_batch(self, batch: list[_Item]) -> list[_Done]:
        assert self._conns is not None
        locks = self.locks or registry(self.broker.sessions) or SubjectLocks()
        held: dict[str, asyncio.Lock] = {}
        conn = await self._conns.take()
        try:
            done = await self._commit(conn, batch, locks, held)
        except Exception:
            if await _rolled_back(conn):
                self._conns.give(conn)
            else:
                self._conns.discard(conn)
            raise
        except BaseException:  # cancelled mid-transaction: the server rolls back on close
            self._conns.discard(conn)
            raise
        finally:
            for lock in held.values():
                lock.release()
        self._conns.give(conn)
        return done

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
        if keys:
            for r in await conn.fetch(_CONSENTS_SQL, [k[0] for k in keys], [k[1] for k in keys]):
                read = ConsentRow(
                    **{c.key: _result(c, v) for c, v in zip(_CONSENT_COLUMNS, r, strict=True)}
                )
                consents[(read.bank_id, str(read.bank_consent_id))] = read
        # what each event would write, read first (nothing is written for one put off)
        alerts: list[_Alert] = []
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
        subjects = sorted({a.row.subject_id for mine in wanted.values() for a in mine})
        locked: set[str] = set()
        if subjects:
            locked = {r[0] for r in await conn.fetch(_LOCK_SQL, subjects)}
        for n, mine in list(wanted.items()):
            if any(a.row.subject_id not in locked for a in mine):
                self.subject_skips += 1
                done[n] = _Done(None, again=True)  # locked by another process: next batch
                del wanted[n]
        # the events' de-duplication rows, in key order (two writers never wait on each other
        # in a cycle); a key not inserted was stored before (or by another broker meanwhile)
        firsts: dict[tuple[str, str], int] = {}
        for n in wanted:
            firsts.setdefault((batch[n].bank_id, str(batch[n].claims["jti"])[:100]), n)
        fresh: set[tuple[str, str]] = set()
        if firsts:
            ordered = sorted(firsts)
            fresh = {
                (r[0], r[1])
                for r in await conn.fetch(
                    _JTI_SQL,
                    [k[0] for k in ordered],
                    [k[1] for k in ordered],
                    [now] * len(ordered),
                )
            }
        for n in wanted:
            key = (batch[n].bank_id, str(batch[n].claims["jti"])[:100])
            if key in fresh and firsts[key] == n:
                alerts.extend(wanted[n])
                done[n] = _Done("ignored")
            else:
                done[n] = _Done("duplicate")
        # one alert row per (consent, bank alert): the first in the batch, if none is stored
        unique: dict[tuple[str, str], _Alert] = {}
        for a in alerts:
            unique.setdefault((a.row.consent_id, a.alert_id), a)
        stored: set[tuple[str, str]] = set()
        collected: dict[tuple[str, str], tuple[list[SQLModel], dict[str, Any], datetime]] = {}
        if unique:
            for key, a in unique.items():
                into = _Collect()
                # each its own time, as one by one: a subject's messages go out in this order
                at = broker.clock()
                view = queue_alert(
                    broker, into, batch[a.item].bank_id, a.event, a.row, a.alert_id, a.handle, at
                )
                collected[key] = (into.rows, view, at)
            ordered_alerts = sorted(unique)
            handles = [_alert_row(collected[k][0]).handle for k in ordered_alerts]
            stored = {
                (r[0], r[1])
                for r in await conn.fetch(
                    _ALERT_SQL,
                    [k[0] for k in ordered_alerts],
                    [k[1] for k in ordered_alerts],
                    handles,
                )
            }
        pushed = [(k, unique[k]) for k in unique if k in stored]  # in the batch's order
        if pushed:
            pendings: dict[str, list[PendingEntry]] = {}
            outbox: list[OutboxRow] = []
            for key, a in pushed:
                rows, view, at = collected[key]
                outbox.extend(r for r in rows if isinstance(r, OutboxRow))
                entry = alert_audit(a.row, view, at)
                pendings.setdefault(a.row.subject_id, []).append(
                    PendingEntry(**{**entry, "fields": tuple(entry["fields"])})
                )
                done[a.item] = _Done("processed")
            ids = sorted(pendings)
            entries = chained(await postgres_chain_heads(conn, ids), pendings)
            await conn.execute(
                _OUTBOX_SQL,
                [o.id for o in outbox],
                [o.client_id for o in outbox],
                [o.subject_id for o in outbox],
                [o.kind for o in outbox],
                [o.payload for o in outbox],
                [o.attempts for o in outbox],
                [o.next_attempt_at for o in outbox],
                [o.created_at for o in outbox],
            )
            await conn.executemany(_PG_INSERT_SQL, [row_of(e) for sid in ids for e in entries[sid]])
            await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        await conn.execute("COMMIT")
        result = [d if d is not None else _Done(None) for d in done]
        return result


def _alert_row(rows: list[SQLModel]) -> AlertRow:
    found = [r for r in rows if isinstance(r, AlertRow)]
    assert len(found) == 1
    return found[0]
