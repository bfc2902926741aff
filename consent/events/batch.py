"""Group commit of the common bank events on SQLite: fraud alerts and "the account's
transactions changed" (OBIE ``resource-update``, the bank's ``transaction-changed``).

Measured (``python -m bench.alert_latency``, ``bench.dbtrace``): through SQLAlchemy's async
driver one fraud alert made 26 hand-offs between the event loop and the connection's thread, a
resource-update 9, all of them while holding the process's write gate; at 50 payments a second
(an alert and a resource-update each) the gate was held 87% of the time and the queue for it was
the alert path's tail (gate wait p99 0.58 s). Here one writer task takes every event waiting
and does them all in one transaction (``BEGIN IMMEDIATE``: the write lock is taken before
anything is read, so what is read is current) on a plain ``sqlite3`` connection of its own, run
on the event loop's thread (statements of microseconds, as :class:`consent.store.fastread.
SqliteReader` reads): no hand-off at all. (On a thread of its own, as the access log's writer
does, and through the ORM, it measured worse: the thread's Python work and the loop's took turns
on the GIL.) Another connection holding the write lock is waited for with ``asyncio.sleep``
between tries, never in SQLite's busy handler on the loop. Each event's answer waits for that
commit: the bank hears 2xx only for what is stored.

Same outcome as :func:`consent.events.ingest.ingest`, event by event (a replay within one batch
is a duplicate). Nothing is written for an event that is put off or handed back. Put off to the
next batch (first in it): an alert whose subject this writer had not met yet (it takes each
subject's in-process audit lock on the event loop before the batch, as the access log's writer
does, so a chain is never extended under another transaction's feet), and an event whose
consent's account handles were not in memory (loaded before that next batch; accounts seen for
the first time get their handles there as a read gives them, all in one transaction).
Handed back to the caller, which ingests it the usual way: other event kinds; an event put off
twice already (a subject's lock another transaction held, a consent that ended); every event
of a batch whose transaction failed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Boolean, Column, Table
from sqlmodel import SQLModel, col, select

from consent.domain import consent as rules
from consent.domain.scopes import Scope, scopes_from_text, scopes_to_text
from consent.events.ingest import (
    FRAUD_ALERT,
    RESOURCE_UPDATE,
    TRANSACTION_CHANGED,
    alert_allowed,
    alert_audit,
    queue_alert,
)
from consent.receipts.choices import chosen_since
from consent.receipts.marks import account_of, bank_consent_of
from consent.service.account_handles import handle_for
from consent.service.broker import Broker
from consent.service.errors import BrokerError
from consent.service.linking import to_domain
from consent.store.audit_writer import PendingEntry, sqlite_append, sqlite_time
from consent.store.fastread import utc
from consent.store.locks import SubjectLocks, lock_across_processes, registry
from consent.store.tables import (
    AccountHandle,
    AlertRow,
    ConsentKey,
    ConsentRow,
    ProcessedEvent,
    ReceiptChoice,
    ReceiptWork,
    ScopeSet,
    UTCDateTime,
)
from consent.vault.envelope import open_sealed

log = logging.getLogger(__name__)

KINDS = frozenset({FRAUD_ALERT, RESOURCE_UPDATE, TRANSACTION_CHANGED})
MAX_BATCH = 64  # events in one transaction
MAX_TRIES = 2  # batches an event may be put off for (its subject's lock, its consent's handles)
# while another connection holds SQLite's write lock, the batch waits this long between tries
# (about 4 s in all, then its events are handed back and wait in the busy handler as before)
LOCK_RETRY_S = (0.001, 0.002, 0.005, *(0.01,) * 9, *(0.05,) * 10, *(0.1,) * 32)


@dataclass
class _Item:
    bank_id: str
    claims: dict[str, Any]
    done: asyncio.Future[str | None]
    tries: int = 0  # batches that put it off


@dataclass
class _Done:
    outcome: str | None  # None: not done, nothing written
    receipts: bool = False  # receipt work was marked: wake the receipt worker
    # not done for now: its subject was not locked (it is known now), or the handles of this
    # consent were not in memory (to load, then try again; handed back if the account has none)
    again: bool = False
    handles_of: ConsentRow | None = None
    account: str = ""


@dataclass
class EventWriter:
    """What the SQLite and the PostgreSQL writers share: the queue of waiting events, one
    writer task taking up to :data:`MAX_BATCH` of them at a time, and events put off to the next
    batch (made ready first) or handed back. A backend commits a batch in
    :meth:`_commit_batch`."""

    broker: Broker
    batches: int = field(default=0, kw_only=True)  # transactions committed (for tests)
    handed_back: int = field(default=0, kw_only=True)  # events the caller ingested itself
    _queue: list[_Item] = field(default_factory=list, kw_only=True)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, kw_only=True)
    _task: asyncio.Task[None] | None = field(default=None, kw_only=True)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop taking events (those waiting are handed back) and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for item in self._queue:
            if not item.done.done():
                item.done.set_result(None)
        self._queue.clear()
        await self._dispose()

    async def _dispose(self) -> None:
        """Close the writer's connection."""

    def takes(self, kind: str) -> bool:
        """Whether events of ``kind`` are written here."""
        return kind in KINDS

    async def ingest(self, bank_id: str, claims: dict[str, Any]) -> str | None:
        """The event's outcome once committed; None if the caller must ingest it itself."""
        events = claims.get("events")
        if (
            self._task is None
            or not isinstance(events, dict)
            or not events
            or not all(self.takes(k) and isinstance(e, dict) for k, e in events.items())
        ):
            return None
        done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(bank_id, claims, done))
        self._wake.set()
        outcome = await asyncio.shield(done)  # a cancelled request does not cancel the batch
        if outcome is None:
            self.handed_back += 1
        return outcome

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                try:
                    await self._write(batch)
                except BaseException:  # stopped mid-batch: its callers ingest their events
                    for item in batch:
                        if not item.done.done():
                            item.done.set_result(None)
                    raise

    async def _commit_batch(self, batch: list[_Item]) -> list[_Done]:
        """Commit ``batch`` in one transaction: each event's outcome, in order."""
        raise NotImplementedError

    async def _warm(self, consent_ids: list[str]) -> None:
        """Load the handle maps of the consents not in memory yet, all in two reads (their
        data keys, their handles) rather than two per consent (:func:`known_handles`, which
        then finds them in memory): measured on PostgreSQL at 200 alerts a second, loading
        first-seen consents one by one was a fifth of the broker's CPU in a 10 s flood. A
        consent whose key is gone (shredded) is left to :func:`known_handles` to refuse."""
        broker = self.broker
        cold = [cid for cid in consent_ids if cid not in broker.handles]
        if not cold or broker.data_keys is None:
            return
        async with broker.sessions() as session:
            keys = (
                await session.exec(select(ConsentKey).where(col(ConsentKey.consent_id).in_(cold)))
            ).all()
            opened = {
                k.consent_id: broker.open_data_key(k.consent_id, k.kek_version, k.wrapped)
                for k in keys
            }
            if not opened:
                return
            found = (
                await session.exec(
                    select(AccountHandle).where(col(AccountHandle.consent_id).in_(list(opened)))
                )
            ).all()
        maps: dict[str, dict[str, str]] = {cid: {} for cid in opened}
        for h in found:
            account = open_sealed(
                opened[h.consent_id], h.account_ref, consent_id=h.consent_id, field="account_id"
            )
            maps[h.consent_id][account.decode()] = h.handle
        for cid, known in maps.items():
            broker.handles.setdefault(cid, known)

    async def _write(self, batch: list[_Item]) -> None:
        try:
            done = await self._commit_batch(batch)
            self.batches += 1
        except Exception:
            log.exception("a batch of %d bank events failed; ingesting them one by one", len(batch))
            done = [_Done(None) for _ in batch]
        if any(d.receipts for d in done):
            self.broker.receipt_wake.set()
        later: list[tuple[_Item, _Done]] = []
        for item, d in zip(batch, done, strict=True):
            if d.again and item.tries < MAX_TRIES:
                later.append((item, d))
            elif not item.done.done():
                item.done.set_result(d.outcome)  # answered now, whatever is put off
        if later:
            # before the next batch: made ready beside it, the handles' own writes would queue
            # for SQLite's write lock with it (measured: more of the first alerts over 250 ms)
            await self._put_off(later)

    async def _put_off(self, later: list[tuple[_Item, _Done]]) -> None:
        """Queue ``later`` again (first) once ready; hand back those that cannot be."""
        ready: set[int] = set()
        try:
            ready = await self._ready(later)
        except Exception:
            log.exception("preparing %d bank events failed; handing them back", len(later))
        finally:
            again = []
            for n, (item, _) in enumerate(later):
                if n in ready and self._task is not None:
                    item.tries += 1
                    again.append(item)
                elif not item.done.done():
                    item.done.set_result(None)
            self._queue[:0] = again
            if again:
                self._wake.set()

    async def _ready(self, later: list[tuple[_Item, _Done]]) -> set[int]:
        """Which of ``later`` can go in the next batch: those put off for their subject's lock,
        and those whose consent's handles are now in memory, their account's among them.
        Handle maps not in memory are loaded in bulk (:meth:`_warm`). Accounts seen for the
        first time get their handles here, as a read gives them (under each subject's read
        lock, and on PostgreSQL the consent's advisory lock, as :func:`handles_for` takes it),
        all in one transaction behind the write gate. An event of a consent that has ended is
        handed back."""
        broker = self.broker
        ready = {n for n, (_, d) in enumerate(later) if d.handles_of is None}
        wanted = [(n, d.handles_of, d.account) for n, (_, d) in enumerate(later) if d.handles_of]
        if not wanted:
            return ready
        rows = {row.consent_id: row for _, row, _ in wanted if row is not None}
        await self._warm(list(rows))
        missing = [
            (row, account)
            for _, row, account in wanted
            if row is not None and account not in broker.handles.get(row.consent_id, {})
        ]
        if missing:
            async with contextlib.AsyncExitStack() as stack:
                for subject in sorted({row.subject_id for row, _ in missing}):
                    await stack.enter_async_context(broker.read_lock(subject))
                async with broker.writes(), broker.sessions() as session:
                    # on PostgreSQL another broker process may be making these handles right
                    # now: wait for it (as handles_for does, consents in order) and read what it
                    # made, so an account never gets two handles
                    making = sorted({row.consent_id for row, _ in missing})
                    for cid in making:
                        if await lock_across_processes(session, f"handles:{cid}"):
                            broker.handles.pop(cid, None)
                    await self._warm(making)
                    ended: set[str] = set()
                    for row, account in missing:
                        if row.consent_id in ended:
                            continue
                        try:
                            await handle_for(broker, session, row, account)
                        except BrokerError:
                            ended.add(row.consent_id)
                    await session.commit()
                # the new handles' consents, reloaded (handle_for drops them from memory)
                await self._warm([cid for cid in making if cid not in ended])
        ready.update(
            n
            for n, row, account in wanted
            if row is not None and account in broker.handles.get(row.consent_id, {})
        )
        return ready


@dataclass
class SqliteEventWriter(EventWriter):
    """One writer task and one connection (see the module's docstring)."""

    path: str
    lock_retries: int = field(default=0, kw_only=True)  # times another connection held the lock
    _conn: sqlite3.Connection | None = field(default=None, kw_only=True)
    # (bank id, the bank's consent id) -> subject id, as read (a consent's subject never changes)
    _subjects: dict[tuple[str, str], str] = field(default_factory=dict, kw_only=True)

    async def _dispose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _commit_batch(self, batch: list[_Item]) -> list[_Done]:
        async with self.broker.writes():  # first the gate, as every writer, then the locks
            held = await self._lock_subjects(batch)
            try:
                return await self._commit_when_free(batch, frozenset(held))
            finally:
                for lock in held.values():
                    lock.release()

    async def _lock_subjects(self, batch: list[_Item]) -> dict[str, asyncio.Lock]:
        """The audit locks of the batch's alerts' subjects that are free now (a held one is not
        waited for: that subject's alerts are handed back)."""
        locks = registry(self.broker.sessions) or SubjectLocks()
        held: dict[str, asyncio.Lock] = {}
        for item in batch:
            for kind, ev in item.claims["events"].items():
                subject = self._subjects.get((item.bank_id, str(ev.get("consent_id"))))
                if kind != FRAUD_ALERT or subject is None or subject in held:
                    continue
                lock = locks.lock(subject)
                if not lock.locked():
                    await lock.acquire()
                    held[subject] = lock
        return held

    async def _commit_when_free(self, batch: list[_Item], held: frozenset[str]) -> list[_Done]:
        """The batch, committed on the event loop's thread once SQLite's write lock is free
        (another connection holding it is waited for here, not in SQLite's busy handler, which
        would stall the loop)."""
        for wait in (*LOCK_RETRY_S, None):
            try:
                return self._commit(batch, held)
            except sqlite3.OperationalError as e:
                if wait is None or "locked" not in str(e):
                    raise
            self.lock_retries += 1
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    # --- synchronous, on the event loop's thread --------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # no busy handler (timeout 0): a locked database is waited for by _commit_when_free
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA synchronous=NORMAL")  # as consent.store.db's connections
            self._conn = conn
        return self._conn

    def _commit(self, batch: list[_Item], held: frozenset[str]) -> list[_Done]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")  # the write lock first: what is read next is current
        try:
            rows = Rows(conn)
            done = [self._one(rows, item, held) for item in batch]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return done

    def _consent(self, rows: Rows, bank_id: str, bank_consent_id: object) -> ConsentRow | None:
        if not isinstance(bank_consent_id, str):
            return None
        row = rows.first(
            ConsentRow, "bank_id = ? AND bank_consent_id = ?", bank_id, bank_consent_id
        )
        if row is not None:
            self._subjects[(bank_id, bank_consent_id)] = row.subject_id
        return row

    def _handle(self, row: ConsentRow, account_id: str) -> str | None:
        """The account's handle if it is in memory (else None: the caller makes it)."""
        return self.broker.handles.get(row.consent_id, {}).get(account_id)

    def _one(self, rows: Rows, item: _Item, held: frozenset[str]) -> _Done:
        """One event: everything read first, then written (or nothing, if handed back)."""
        broker, bank_id, claims = self.broker, item.bank_id, item.claims
        jti = str(claims["jti"])[:100]
        if rows.exists(ProcessedEvent, "bank_id = ? AND jti = ?", bank_id, jti):
            return _Done("duplicate")
        now: datetime = broker.clock()
        outcome = "ignored"
        alerts: list[tuple[dict[str, Any], ConsentRow, str, str]] = []
        works: list[tuple[ConsentRow, str]] = []
        for kind, ev in claims["events"].items():
            if kind == FRAUD_ALERT:
                row = self._consent(rows, bank_id, ev.get("consent_id"))
                if row is None or not alert_allowed(broker, bank_id, row, now):
                    continue
                alert_id = str(ev.get("alert_id", ""))[:100]
                where = "consent_id = ? AND alert_id = ?"
                if not alert_id or rows.exists(AlertRow, where, row.consent_id, alert_id):
                    continue
                account = str(ev.get("account_id", ""))
                handle = self._handle(row, account)
                if handle is None or row.subject_id not in held:
                    return _Done(
                        None,
                        again=True,
                        handles_of=None if handle is not None else row,
                        account=account,
                    )
                alerts.append((ev, row, alert_id, handle))
                outcome = "processed"
            else:
                marked = False
                account_id, bank_consent_id = account_of(ev), bank_consent_of(claims)
                if account_id is not None and bank_consent_id is not None:
                    row = self._consent(rows, bank_id, bank_consent_id)
                    if row is not None and (
                        rules.can_read(
                            to_domain(row), Scope.TRANSACTIONS, broker.policy(bank_id), now
                        ).allowed
                    ):
                        handle = self._handle(row, account_id)
                        if handle is None:
                            return _Done(None, again=True, handles_of=row, account=account_id)
                        choices = rows.all(ReceiptChoice, "consent_id = ?", row.consent_id)
                        if chosen_since(choices, handle) is not None:
                            works.append((row, handle))
                            marked = True
                if marked or kind == RESOURCE_UPDATE:
                    outcome = "processed"
        rows.add(ProcessedEvent(jti=jti, bank_id=bank_id, received_at=now))
        for ev, row, alert_id, handle in alerts:
            view = queue_alert(broker, rows, bank_id, ev, row, alert_id, handle, now)
            entry = alert_audit(row, view, now)
            pending = PendingEntry(**{**entry, "fields": tuple(entry["fields"])})
            sqlite_append(rows.conn, {row.subject_id: [pending]})
        for row, handle in works:
            work = rows.first(ReceiptWork, "handle = ?", handle)
            if work is None:
                rows.add(
                    ReceiptWork(
                        handle=handle, consent_id=row.consent_id, due_at=now, seen_until=now
                    )
                )
            else:
                rows.update(
                    ReceiptWork,
                    "handle = ?",
                    (handle,),
                    version=work.version + 1,
                    due_at=min(work.due_at, now),
                )
        return _Done(outcome, receipts=bool(works))


class Rows:
    """Table rows on a plain ``sqlite3`` connection, stored exactly as SQLAlchemy stores them
    (times as UTC ``YYYY-MM-DD HH:MM:SS.ffffff``, scopes as text, booleans as 0/1): a few
    microseconds a statement instead of an ORM flush."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add(self, obj: SQLModel) -> None:
        """Insert ``obj``'s row now (its columns with a value)."""
        table = _table(type(obj))
        names, values = [], []
        for column in table.columns:
            value = getattr(obj, column.key, None)
            if value is None and column.primary_key:
                continue  # an autoincrement id
            names.append(column.name)
            values.append(_bind(column, value))
        self.conn.execute(
            f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608 - schema names
            f"VALUES ({', '.join('?' * len(names))})",
            values,
        )

    def update(
        self, model: type[SQLModel], where: str, params: tuple[Any, ...], **values: Any
    ) -> None:
        table = _table(model)
        sets = ", ".join(f"{table.columns[k].name} = ?" for k in values)
        binds = [_bind(table.columns[k], v) for k, v in values.items()]
        self.conn.execute(f"UPDATE {table.name} SET {sets} WHERE {where}", (*binds, *params))  # noqa: S608

    def all(self, model: type[_M], where: str, *params: Any) -> list[_M]:
        table = _table(model)
        columns = list(table.columns)
        found = self.conn.execute(
            f"SELECT {', '.join(c.name for c in columns)} FROM {table.name} WHERE {where}",  # noqa: S608
            params,
        ).fetchall()
        return [
            model(**{c.key: _result(c, v) for c, v in zip(columns, r, strict=True)}) for r in found
        ]

    def first(self, model: type[_M], where: str, *params: Any) -> _M | None:
        found = self.all(model, where + " LIMIT 1", *params)
        return found[0] if found else None

    def exists(self, model: type[SQLModel], where: str, *params: Any) -> bool:
        table = _table(model)
        sql = f"SELECT 1 FROM {table.name} WHERE {where} LIMIT 1"  # noqa: S608
        return self.conn.execute(sql, params).fetchone() is not None


_M = TypeVar("_M", bound=SQLModel)


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _bind(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return sqlite_time(value)
    if isinstance(column.type, ScopeSet):
        return scopes_to_text(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _result(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return utc(value)
    if isinstance(column.type, ScopeSet):
        return scopes_from_text(value)
    if isinstance(column.type, Boolean):
        return bool(value)
    return value
