"""Group commit for the access log: one writer per process appends the entries of concurrent
requests in a single transaction, and each request waits for its own entry's commit.

A read answers only after :meth:`AuditWriter.append` returned, i.e. after the transaction holding
its entry committed; if that transaction fails, every request waiting on it gets
:class:`AuditNotRecordedError` and answers with an error instead of data that was never logged.

Batching: while one batch commits, new entries queue up and go together in the next one. When
other requests are in progress (``inline`` says no), the writer also lingers ``linger_s`` before
taking a batch, so that their entries join it: one sync for several requests (the broker's
CPU per request at 64 connections, ``bench.broker_wrk``, two runs: 1.28 -> 1.10 and
0.97 -> 0.91 ms with 2 ms on SQLite).
A lone request never waits.

Where a batch commits: on the writer's own thread, so the event loop goes on serving other
requests while the disk syncs; but when nothing else waits for the loop (``inline``: the broker
is answering this one request), on the loop's thread itself (:meth:`Appender.append_now`). The
hand-off to the writer's thread and back (a thread wake-up, the loop's self-pipe, two sleeps)
cost more than the commit: at one connection, 0.25 ms of the broker's CPU per request and
0.7 ms of its latency (``bench.broker_wrk``). The commit is the same transaction, synced the
same way, on a connection that never waits for a lock and never checkpoints.

Chains stay linear: per subject, entries are appended in the order they were submitted, after the
subject's current last entry, read in the same transaction or remembered from the writer's
previous batch: on PostgreSQL checked in the same statement that inserts (see
:class:`PostgresAppender`), on SQLite used only while no other connection has committed since
(``PRAGMA data_version``, see :class:`SqliteAppender`). The writer takes the same subject locks as
:func:`consent.store.audit.record` (an in-process lock, and on PostgreSQL a row lock on the
subject, which also orders writers in other processes). A subject whose in-process lock another
transaction holds right now is not waited for: its entries stay queued for the next batch, so one
slow transaction never stalls everyone else's audit (a row lock held by another process is waited
for).

Backends: an :class:`Appender` commits a batch on the writer's own connection; :func:`appender_for`
picks one from the database URL, once, when the app starts (:class:`SqliteAppender`,
:class:`PostgresAppender`). Rows and entries convert in one place:
:func:`consent.store.audit.row_of` and :func:`consent.store.audit.entry_of`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from consent.domain.audit import AuditEntry, append_entry
from consent.store.audit import AT, COLUMNS, entry_of, row_of
from consent.store.fastread import sqlite_path
from consent.store.locks import SubjectLocks
from consent.store.pgpool import PgConnections, postgres_dsn

log = logging.getLogger(__name__)


class AuditNotRecordedError(RuntimeError):
    """The entry could not be committed: the request must not answer with data."""


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An access-log entry before it has a place (sequence number, hashes) in its chain."""

    subject_id: str
    client_id: str
    action: str
    scope: str | None
    purpose: str
    fields: tuple[str, ...]
    outcome: str
    reason: str
    at: datetime


_Item = tuple[PendingEntry, "asyncio.Future[AuditEntry]"]


def chained(
    heads: dict[str, AuditEntry], pendings: dict[str, list[PendingEntry]]
) -> dict[str, list[AuditEntry]]:
    """Each subject's pending entries, in order, chained after its current head."""
    out: dict[str, list[AuditEntry]] = {}
    for subject_id, items in pendings.items():
        prev = heads.get(subject_id)
        chain: list[AuditEntry] = []
        for p in items:
            prev = append_entry(
                prev,
                subject_id=p.subject_id,
                client_id=p.client_id,
                action=p.action,
                scope=p.scope,
                purpose=p.purpose[:80],
                fields=sorted(p.fields),
                outcome=p.outcome,
                reason=p.reason,
                at=p.at,
            )
            chain.append(prev)
        out[subject_id] = chain
    return out


# the last entry of one subject: one backward step on the (subject_id, seq) unique index, however
# long the chain (a GROUP BY with max(seq) reads every entry of the subject: 2.3 ms for 20
# subjects of 1,200 entries each, against 0.2 ms this way)
_HEAD_SQL = f"""
SELECT {", ".join(COLUMNS)} FROM audit_entry WHERE subject_id = ? ORDER BY seq DESC LIMIT 1
"""  # noqa: S608 - constant column names
_COLUMN_LIST = ", ".join(COLUMNS)
# (the f-strings below join constant column names only)
_INSERT_SQL = f"INSERT INTO audit_entry ({_COLUMN_LIST}) VALUES ({','.join('?' * len(COLUMNS))})"  # noqa: S608


class Appender(Protocol):
    """Commits one batch: each subject's pending entries chained after its current head, in one
    transaction, returning the entries as stored. :func:`appender_for` picks the backend."""

    async def open(self) -> None: ...

    async def append(
        self, pendings: dict[str, list[PendingEntry]]
    ) -> dict[str, list[AuditEntry]]: ...

    def append_now(
        self, pendings: dict[str, list[PendingEntry]]
    ) -> dict[str, list[AuditEntry]] | None:
        """The same on the caller's (the event loop's) thread, waiting for nothing but the
        disk; None when that would mean waiting for something else (then :meth:`append`)."""
        ...

    async def close(self) -> None: ...


def appender_for(database_url: str, sync: str = "full") -> Appender:
    """The writer's backend, chosen once: its own sqlite3 connection for a SQLite file (``sync``:
    its ``synchronous`` setting, ``full`` or ``normal``), its own asyncpg connection for
    PostgreSQL (the broker runs on nothing else)."""
    path, dsn = sqlite_path(database_url), postgres_dsn(database_url)
    if path is not None:
        return SqliteAppender(path, sync)
    if dsn is not None:
        return PostgresAppender(dsn)
    raise ValueError("the access log needs a SQLite file or PostgreSQL")


def sqlite_time(at: datetime) -> str:
    """A time as SQLAlchemy stores it in SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def sqlite_chain_heads(
    conn: sqlite3.Connection, subject_ids: Sequence[str]
) -> dict[str, AuditEntry]:
    """Each subject's last entry (none for a subject without one), on a plain ``sqlite3``
    connection."""
    heads: dict[str, AuditEntry] = {}
    for subject_id in subject_ids:
        for row in conn.execute(_HEAD_SQL, (subject_id,)).fetchall():  # none or one
            heads[subject_id] = entry_of(row)
    return heads


def sqlite_append(
    conn: sqlite3.Connection,
    pendings: dict[str, list[PendingEntry]],
    heads: dict[str, AuditEntry] | None = None,
) -> dict[str, list[AuditEntry]]:
    """Chain and insert ``pendings`` on a plain ``sqlite3`` connection whose transaction holds
    the write lock (``BEGIN IMMEDIATE``) and whose caller holds the subjects' locks. ``heads``:
    chain heads known to be current in this transaction (the others are read)."""
    known = heads or {}
    unknown = [sid for sid in pendings if sid not in known]
    current = {**known, **sqlite_chain_heads(conn, unknown)} if unknown else known
    entries = chained({sid: current[sid] for sid in pendings if sid in current}, pendings)
    rows = []
    for chain in entries.values():
        for e in chain:
            row = row_of(e)
            rows.append((*row[:AT], sqlite_time(e.at), *row[AT + 1 :]))
    conn.executemany(_INSERT_SQL, rows)
    return entries


class SqliteAppender:
    """SQLite: a whole batch (``BEGIN IMMEDIATE``, chain heads, inserts, ``COMMIT``) in one call
    on the writer's own connection and thread, instead of a dozen hand-offs through the async
    driver. ``BEGIN IMMEDIATE`` takes the write lock before the heads are read;
    ``synchronous=FULL`` (the default) syncs the WAL at every commit, so a committed entry
    survives a power cut (one sync per batch, shared by all its requests); ``normal``
    (``CONSENT_AUDIT_SYNC``) leaves the sync to checkpoints: a committed entry is in the
    operating system's hands and survives a crash of the process, not a power cut. Timestamps are
    stored as SQLAlchemy stores them (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC)."""

    # commits on the loop's thread between two checkpoints run on the writer's thread
    CHECKPOINT_EVERY = 200

    def __init__(self, path: str, sync: str = "full", *, remembered: int = 10_000) -> None:
        if sync not in ("full", "normal"):
            raise ValueError(f"synchronous must be full or normal, not {sync!r}")
        self.path = path
        self.sync = sync
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")
        self._conn: sqlite3.Connection | None = None
        self._inline: sqlite3.Connection | None = None  # append_now's, on the loop's thread
        self._inline_commits = 0
        self._closed = False
        # Chain heads as this appender last committed them, valid while no other connection
        # (another process, the ORM, or this appender's other connection) has committed since:
        # ``PRAGMA data_version`` on the connection about to write, read once its transaction
        # holds the write lock, is then still the value seen in the previous transaction on the
        # same connection. Saves each entry's head query (thread CPU, bench.broker_wrk).
        self.remembered = remembered
        self.heads_reused = 0  # subjects whose head came from memory (for tests)
        self._heads: dict[str, AuditEntry] = {}
        self._heads_version: tuple[int, int] | None = None  # (id(conn), its data_version)

    async def open(self) -> None:
        """Nothing to do: the connection opens on the writer's thread with the first batch."""

    async def append(self, pendings: dict[str, list[PendingEntry]]) -> dict[str, list[AuditEntry]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._append, pendings)

    async def close(self) -> None:
        await asyncio.to_thread(self.close_now)

    def close_now(self) -> None:
        """Close the connection and stop the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True

        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)
        if self._inline is not None:
            self._inline.close()
            self._inline = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA synchronous={self.sync.upper()}")
            self._conn = conn
        return self._conn

    def append_now(
        self, pendings: dict[str, list[PendingEntry]]
    ) -> dict[str, list[AuditEntry]] | None:
        """The batch committed on the calling thread (the event loop's), synced as configured,
        on a connection of its own that never waits for a lock (another connection writing:
        None, and the batch goes to the writer's thread) and never checkpoints (the writer's
        thread does, every :attr:`CHECKPOINT_EVERY` of these commits)."""
        if self._closed:
            return None
        try:
            conn = self._inline_connection()
            conn.execute("BEGIN IMMEDIATE")
            entries = self._write(conn, pendings)
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            return None  # rolled back, nothing written
        self._inline_commits += 1
        if self._inline_commits % self.CHECKPOINT_EVERY == 0:
            with contextlib.suppress(RuntimeError):  # shutting down: the entries are committed
                self._executor.submit(self._checkpoint)
        return entries

    def _inline_connection(self) -> sqlite3.Connection:
        if self._inline is None:
            conn = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute(f"PRAGMA synchronous={self.sync.upper()}")
                conn.execute("PRAGMA wal_autocheckpoint=0")
            except BaseException:
                conn.close()
                raise
            self._inline = conn
        return self._inline

    def _checkpoint(self) -> None:
        """Copy the log into the database file, as far as no reader holds it back (the
        writer's thread, for the commits made on the loop's thread)."""
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            log.warning("access-log checkpoint failed; the next one retries", exc_info=True)

    def _append(self, pendings: dict[str, list[PendingEntry]]) -> dict[str, list[AuditEntry]]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        return self._write(conn, pendings)

    def _write(
        self, conn: sqlite3.Connection, pendings: dict[str, list[PendingEntry]]
    ) -> dict[str, list[AuditEntry]]:
        """Chain and insert the batch in the transaction just begun, and commit it."""
        try:
            version = (id(conn), conn.execute("PRAGMA data_version").fetchone()[0])
            if version != self._heads_version:
                self._heads.clear()  # another connection committed: every chain may have moved
            self._heads_version = None  # until this transaction has committed
            heads = {sid: self._heads[sid] for sid in pendings if sid in self._heads}
            entries = sqlite_append(conn, pendings, heads)
            conn.execute("COMMIT")
        except BaseException:
            self._heads.clear()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.heads_reused += len(heads)
        self._remember(entries)
        self._heads_version = version  # our own commit leaves data_version as it was
        return entries

    def _remember(self, entries: dict[str, list[AuditEntry]]) -> None:
        known = self._heads
        for sid, chain in entries.items():
            known.pop(sid, None)
            known[sid] = chain[-1]  # most recently used last
        while len(known) > self.remembered:
            del known[next(iter(known))]


_PG_LOCK_SQL = """
SELECT subject_id FROM subject WHERE subject_id = ANY($1::text[]) ORDER BY subject_id FOR UPDATE
"""
# the last entry of each subject: one backward step on the (subject_id, seq) unique index each
_PG_HEADS_SQL = f"""
SELECT {", ".join(f"a.{c}" for c in COLUMNS)}
FROM unnest($1::text[]) AS s (subject_id)
CROSS JOIN LATERAL (
    SELECT * FROM audit_entry AS e WHERE e.subject_id = s.subject_id ORDER BY e.seq DESC LIMIT 1
) AS a
"""  # noqa: S608
_PG_INSERT_SQL = f"""
INSERT INTO audit_entry ({_COLUMN_LIST})
VALUES ({", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))})
"""  # noqa: S608
# The batch in one statement, chained after heads the writer remembers ($1 subjects, $2 and $3
# their heads' seq and hash). It inserts nothing unless every subject still exists and is locked
# (row locks in subject order, as above) and every chain still ends with the remembered head.
# That check runs on the statement's snapshot, taken before any wait for a lock: if the holder
# appended meanwhile, the insert collides with its entry on the (subject_id, seq) unique index
# and fails instead, so a chain never forks. Commits on its own (no BEGIN / COMMIT round trips).
_PG_APPEND_AFTER_SQL = f"""
WITH locked AS MATERIALIZED (
    SELECT subject_id FROM subject WHERE subject_id = ANY($1::text[])
    ORDER BY subject_id FOR UPDATE
), moved AS (
    SELECT FROM unnest($1::text[], $2::int[], $3::text[]) AS h (subject_id, seq, entry_hash)
    LEFT JOIN LATERAL (
        SELECT e.seq, e.entry_hash FROM audit_entry AS e
        WHERE e.subject_id = h.subject_id ORDER BY e.seq DESC LIMIT 1
    ) AS a ON true
    WHERE a.seq IS DISTINCT FROM h.seq OR a.entry_hash IS DISTINCT FROM h.entry_hash
)
INSERT INTO audit_entry ({_COLUMN_LIST})
SELECT * FROM unnest($4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[],
                     $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::text[],
                     $15::text[])
WHERE (SELECT count(*) FROM locked) = cardinality($1::text[]) AND NOT EXISTS (SELECT FROM moved)
"""  # noqa: S608


async def postgres_chain_heads(conn: Any, subject_ids: Sequence[str]) -> dict[str, AuditEntry]:
    """:func:`chain_heads` on a raw asyncpg connection."""
    return {r[0]: entry_of(r) for r in await conn.fetch(_PG_HEADS_SQL, subject_ids)}


class PostgresAppender:
    """PostgreSQL: a whole batch on the writer's own asyncpg connection, without SQLAlchemy's
    pool checkout (a ping), greenlet hops and statement compilation.

    The writer remembers the head of every chain it extended. When it knows the heads of all the
    batch's subjects, the batch is one statement, one round trip (``_PG_APPEND_AFTER_SQL``): it
    locks the subjects, checks the heads are still current and inserts, or does nothing. Otherwise
    (a subject not seen yet, or its chain moved: another process or another transaction of this
    one appended) the batch goes the safe way: ``BEGIN``; a row lock on each subject, in subject
    order (so writers in several processes never deadlock); the heads read after the locks are
    held (a new statement, hence a snapshot with whatever the previous holder committed); one
    pipelined ``executemany`` for the inserts; ``COMMIT``. Either way the caller returns only
    after the commit, durable as the server is configured (``synchronous_commit``)."""

    def __init__(self, dsn: str, *, remembered: int = 10_000) -> None:
        self.connections = PgConnections(dsn, 1)
        self.remembered = remembered  # at most this many chain heads are kept
        self.one_statement = 0  # batches committed in one statement (for tests and metrics)
        self._heads: dict[str, AuditEntry] = {}

    async def open(self) -> None:
        await self.connections.open()

    async def close(self) -> None:
        await self.connections.close()

    def append_now(
        self, pendings: dict[str, list[PendingEntry]]
    ) -> dict[str, list[AuditEntry]] | None:
        """Never: a round trip to the server is no thread hand-off to save."""
        return None

    async def append(self, pendings: dict[str, list[PendingEntry]]) -> dict[str, list[AuditEntry]]:
        try:
            async with self.connections.using() as conn:
                return await self._append(conn, sorted(pendings), pendings)
        except BaseException:  # what was not committed is not the chain's head
            self._forget(pendings)
            raise

    async def _append(
        self, conn: Any, ids: list[str], pendings: dict[str, list[PendingEntry]]
    ) -> dict[str, list[AuditEntry]]:
        known = self._heads
        if all(sid in known for sid in ids):
            heads = [known[sid] for sid in ids]
            entries = chained(dict(zip(ids, heads, strict=True)), pendings)
            rows = [row_of(e) for sid in ids for e in entries[sid]]
            try:
                status = await conn.execute(
                    _PG_APPEND_AFTER_SQL,
                    ids,
                    [h.seq for h in heads],
                    [h.entry_hash for h in heads],
                    *(list(column) for column in zip(*rows, strict=True)),
                )
            except asyncpg.UniqueViolationError:
                status = None  # a chain moved while we waited for its lock: nothing written
            if status == f"INSERT 0 {len(rows)}":
                self.one_statement += 1
                self._remember(entries, ids)
                return entries
            self._forget(pendings)
        await conn.execute("BEGIN")
        locked = [r[0] for r in await conn.fetch(_PG_LOCK_SQL, ids)]
        entries = chained(await postgres_chain_heads(conn, ids), pendings)
        await conn.executemany(_PG_INSERT_SQL, [row_of(e) for sid in ids for e in entries[sid]])
        await conn.execute("COMMIT")
        # a subject without a row (never created, or deleted) never takes the short way
        self._remember(entries, locked)
        return entries

    def _remember(self, entries: dict[str, list[AuditEntry]], subject_ids: list[str]) -> None:
        known = self._heads
        for sid in subject_ids:
            known.pop(sid, None)
            known[sid] = entries[sid][-1]  # most recently used last
        while len(known) > self.remembered:
            del known[next(iter(known))]

    def _forget(self, subject_ids: Iterable[str]) -> None:
        for sid in subject_ids:
            self._heads.pop(sid, None)


class AuditWriter:
    """The process's audit writer (see the module docstring), committing through ``appender``
    (see :func:`appender_for`)."""

    def __init__(
        self,
        appender: Appender,
        locks: SubjectLocks | None,
        *,
        max_batch: int = 256,
        linger_s: float = 0.0,
        inline: Callable[[], bool] | None = None,
    ) -> None:
        self.appender = appender
        self.locks = locks
        self.max_batch = max_batch
        self.linger_s = linger_s
        # whether a batch may be committed on the event loop's thread now (nothing else is
        # waiting for the loop): see Appender.append_now
        self.inline = inline
        self.batches = 0  # committed transactions, for tests and metrics
        self.inline_batches = 0  # those committed on the loop's thread
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the appender and start taking entries."""
        if self._task is None:
            await self.appender.open()
            self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def close(self) -> None:
        """Stop taking entries and flush every queued one before returning."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.appender.close()
        self._fail(self._queue, AuditNotRecordedError("the audit writer stopped"))
        self._queue.clear()

    async def append(self, entry: PendingEntry) -> AuditEntry:
        """Queue ``entry`` and return it once committed (``AuditNotRecordedError`` otherwise)."""
        return (await self.append_all([entry]))[0]

    async def append_all(self, entries: Iterable[PendingEntry]) -> list[AuditEntry]:
        """Queue entries (kept in this order within each subject's chain) and wait until all are
        committed. A cancelled caller does not withdraw them: the data may already be out."""
        if self._closing or self._task is None:
            raise AuditNotRecordedError("the audit writer is not running")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[AuditEntry]] = []
        for entry in entries:
            future: asyncio.Future[AuditEntry] = loop.create_future()
            self._queue.append((entry, future))
            futures.append(future)
        if not futures:
            return []
        self._wake.set()
        # Each future awaited in turn, not through gather and shield: those cost the loop three
        # more passes per request. An entry whose caller is cancelled stays queued and is
        # committed all the same (the writer leaves a future that is already done alone).
        results: list[AuditEntry] = []
        failure: Exception | None = None
        try:
            for future in futures:
                try:
                    results.append(await future)
                except Exception as e:  # the batch failed: every entry of this call did
                    failure = failure or e
        except BaseException:
            for future in futures:  # cancelled: nobody reads the rest
                if not future.cancel() and not future.cancelled():
                    future.exception()
            raise
        if failure is not None:
            raise failure
        return results

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                if self.linger_s and not self._closing and not self._alone():
                    await asyncio.sleep(self.linger_s)  # let the others' entries join this batch
                batch = self._take()
                deferred = await self._flush(batch)
                if deferred:
                    # those subjects are locked by another transaction: retry shortly
                    self._queue[:0] = deferred
                    await asyncio.sleep(0.002)
                else:
                    await asyncio.sleep(0)
            if self._closing:
                return

    def _alone(self) -> bool:
        """Whether nothing else waits for the loop (no other request in progress)."""
        return self.inline is not None and self.inline()

    def _take(self) -> list[_Item]:
        batch = self._queue[: self.max_batch]
        del self._queue[: self.max_batch]
        return batch

    async def _flush(self, batch: list[_Item]) -> list[_Item]:
        """Commit what can be committed now; returns the items of subjects locked elsewhere."""
        by_subject: dict[str, list[_Item]] = {}
        for item in batch:
            by_subject.setdefault(item[0].subject_id, []).append(item)
        held: list[asyncio.Lock] = []
        deferred: list[_Item] = []
        ready: dict[str, list[_Item]] = {}
        for subject_id, items in by_subject.items():
            if self.locks is not None:
                lock = self.locks.lock(subject_id)
                if lock.locked():
                    deferred.extend(items)
                    continue
                await lock.acquire()  # free: returns at once
                held.append(lock)
            ready[subject_id] = items
        try:
            if ready:
                await self._commit(ready)
        finally:
            for lock in held:
                lock.release()
        return deferred

    async def _commit(self, ready: dict[str, list[_Item]]) -> None:
        pendings = {sid: [pending for pending, _ in items] for sid, items in ready.items()}
        try:
            entries = None
            if self._alone():
                entries = self.appender.append_now(pendings)
                self.inline_batches += entries is not None
            if entries is None:
                entries = await self.appender.append(pendings)
        except BaseException as e:
            log.exception("audit batch for %d subjects not committed", len(ready))
            failure = AuditNotRecordedError("the access log could not be written")
            failure.__cause__ = e
            self._fail([item for items in ready.values() for item in items], failure)
            if not isinstance(e, Exception):
                raise
            return
        self.batches += 1
        for subject_id, items in ready.items():
            for (_, future), entry in zip(items, entries[subject_id], strict=True):
                if not future.done():
                    future.set_result(entry)

    @staticmethod
    def _fail(items: Iterable[_Item], error: BaseException) -> None:
        for _, future in items:
            if not future.done():
                future.set_exception(error)
