"""The webhook's reads and writes on PostgreSQL, in a few single-statement round trips.

Through the ORM (:mod:`bot.store.deliveries`, :mod:`bot.store.repo`) a fraud alert cost the bot
six sessions on PostgreSQL: the nonce, the claim (a read, an insert, a read again), the user,
"was this alert shown", "sent" (a delete and two merges), each session checking its connection out
with a ping and committing on its own. Here each step is one statement on a plain ``asyncpg``
pool (prepared once per connection, autocommit, so one round trip and one transaction each):

1. the nonce and the claim (:meth:`PgDeliveries.first_time_and_claim`): the claim is written
   only if the nonce was new, so a replay writes nothing;
2. before sending (:meth:`PgDeliveries.look`): has the delivery been sent meanwhile, was its
   alert shown, and the user it is for. This is a statement of its own on purpose: under READ
   COMMITTED a statement sees what was committed when it started, and a process that was just
   marking the delivery sent may have committed "sent" (and dropped its claim, which let ours
   in) after step 1 started; step 2 starts after step 1 ended, so it sees that "sent" (the ORM
   path reads ``sent:`` again after inserting its claim for the same reason);
3. "sent" (:meth:`PgDeliveries.mark_sent`), only after the Bot API accepted the message: the
   claim deleted and ``sent:`` (and ``alert:``) upserted in one statement.

Messages of a batch go through steps 1–3 side by side, and their claims, looks and "sent"s are
grouped (:class:`_Group`, a group commit): while one statement of a kind is on the wire, the calls
that arrive wait and then go together in the next, one statement with arrays for all of them. A
batch of 32 alerts cost 96 statements, each its own commit; now about 3, whatever the batch size,
while each caller still waits for its own step to be committed before it goes on (so "sent" is
still recorded before the broker is answered, and the look still starts after its claim ended).

Same rows and outcomes as :mod:`bot.store.deliveries` (``seen_deliveries``, keys ``nonce:``,
``pending:``, ``sent:``, ``alert:``), which still renews and releases claims, so exactly once as
the user sees it holds across a kill as before; processes on either path may share a database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from bot.store.deliveries import Claim
from bot.store.tables import ChatUser

POOL_SIZE = 4  # each statement is one short round trip: a few connections keep up with 200/s
GROUP_MAX = 256  # calls in one grouped statement
# Each call planned for its own arrays and for the tables as they are now. PostgreSQL otherwise
# caches a generic plan after five calls, made from the tables' size at that moment: on a new
# deployment that plan read the whole (then empty) seen_deliveries for every call and kept doing
# so while the table grew by a row a delivery (1.7 ms a grouped look in the 200 alerts/s bench,
# a third of PostgreSQL's CPU; tests/bot/test_pgwrite.py). Planning costs about 0.15 ms a call.
PLANS = {"plan_cache_mode": "force_custom_plan"}


def postgres_dsn(database_url: str) -> str | None:
    """A DSN for ``asyncpg`` from a ``postgresql[+driver]://…`` URL; None for other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _key(prefix: str, scoped_id: str) -> str:
    return f"{prefix}:{scoped_id}"[:120]


FIRST_TIME = """
INSERT INTO seen_deliveries (id, seen_at) VALUES ($1, $2::bigint)
ON CONFLICT (id) DO NOTHING RETURNING 1
"""

# $1 nonce key, $2 pending key, $3 sent key, $4 now, $5 now - lease. The claim's INSERT reads
# from the nonce's: a replayed nonce inserts no claim. A pending claim older than the lease
# (its process died) is taken over by the ON CONFLICT update.
FIRST_TIME_AND_CLAIM = """
WITH nonce AS (
    INSERT INTO seen_deliveries (id, seen_at) VALUES ($1, $4::bigint)
    ON CONFLICT (id) DO NOTHING RETURNING 1
), sent AS (
    SELECT 1 FROM seen_deliveries WHERE id = $3
), claim AS (
    INSERT INTO seen_deliveries (id, seen_at)
    SELECT $2, $4::bigint FROM nonce WHERE NOT EXISTS (SELECT 1 FROM sent)
    ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
    WHERE seen_deliveries.seen_at <= $5::bigint
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM nonce), EXISTS (SELECT 1 FROM sent), EXISTS (SELECT 1 FROM claim)
"""

# FIRST_TIME_AND_CLAIM without the nonce (a message of a batch: the request's nonce was
# recorded once for all of them). $1 pending key, $2 sent key, $3 now, $4 now - lease
CLAIM = """
WITH sent AS (
    SELECT 1 FROM seen_deliveries WHERE id = $2
), claim AS (
    INSERT INTO seen_deliveries (id, seen_at)
    SELECT $1, $3::bigint WHERE NOT EXISTS (SELECT 1 FROM sent)
    ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
    WHERE seen_deliveries.seen_at <= $4::bigint
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM sent), EXISTS (SELECT 1 FROM claim)
"""

# $1 sent key, $2 alert key (or NULL), $3 subject: one row whatever is found
LOOK = """
SELECT EXISTS (SELECT 1 FROM seen_deliveries WHERE id = $1) AS sent,
       EXISTS (SELECT 1 FROM seen_deliveries WHERE id = $2) AS alert_shown,
       u.telegram_user_id, u.chat_id, u.subject_id, u.language, u.time_zone
FROM (SELECT 1) AS one LEFT JOIN chat_users AS u ON u.subject_id = $3
"""

SENT = """
WITH claim AS (DELETE FROM seen_deliveries WHERE id = $1)
INSERT INTO seen_deliveries (id, seen_at) VALUES ($2, $3::bigint)
ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
"""

SENT_ALERT = """
WITH claim AS (DELETE FROM seen_deliveries WHERE id = $1)
INSERT INTO seen_deliveries (id, seen_at) VALUES ($2, $3::bigint), ($4, $3::bigint)
ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
"""

DROP = "DELETE FROM seen_deliveries WHERE id = $1"

# CLAIM for many deliveries (no key twice): $1 pending keys, $2 sent keys, $3 now, $4 now - lease
# (one each). One row per delivery, in order: sent, claimed. The claims are inserted in key
# order, so two processes claiming overlapping sets never wait on each other in a cycle.
CLAIM_MANY = """
WITH wanted AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
        WITH ORDINALITY AS w(pending, sent, now, stale, n)
), sent AS (
    SELECT w.n FROM wanted AS w JOIN seen_deliveries AS s ON s.id = w.sent
), claim AS (
    INSERT INTO seen_deliveries (id, seen_at)
    SELECT w.pending, w.now FROM wanted AS w
    WHERE w.n NOT IN (SELECT n FROM sent)
    ORDER BY w.pending
    ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
    WHERE seen_deliveries.seen_at <= (SELECT stale FROM wanted WHERE pending = excluded.id)
    RETURNING id
)
SELECT w.n IN (SELECT n FROM sent) AS sent, w.pending IN (SELECT id FROM claim) AS claimed
FROM wanted AS w ORDER BY w.n
"""

# LOOK for many: $1 sent keys, $2 alert keys (NULL: none), $3 subjects; one row each, in order
LOOK_MANY = """
SELECT EXISTS (SELECT 1 FROM seen_deliveries WHERE id = w.sent) AS sent,
       EXISTS (SELECT 1 FROM seen_deliveries WHERE id = w.alert) AS alert_shown,
       u.telegram_user_id, u.chat_id, u.subject_id, u.language, u.time_zone
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS w(sent, alert, subject, n)
LEFT JOIN chat_users AS u ON u.subject_id = w.subject
ORDER BY w.n
"""

# SENT for many: $1 pending keys (dropped), $2 the keys to record (sent: and alert:, no key
# twice), $3 their times
SENT_MANY = """
WITH claim AS (DELETE FROM seen_deliveries WHERE id = ANY($1::text[]))
INSERT INTO seen_deliveries (id, seen_at)
SELECT * FROM unnest($2::text[], $3::bigint[]) ORDER BY 1
ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
"""

DROP_MANY = "DELETE FROM seen_deliveries WHERE id = ANY($1::text[])"

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class _Group(Generic[_In, _Out]):
    """Group commit for one kind of statement: a call waits while a statement of its kind is on
    the wire, then goes with every call that arrived meanwhile in one statement (``run``: the
    inputs in, one output each, in order). Each caller gets its own output, or the statement's
    error, once that statement has been committed."""

    def __init__(self, run: Callable[[list[_In]], Awaitable[Sequence[_Out]]]) -> None:
        self._run = run
        self._waiting: list[tuple[_In, asyncio.Future[_Out]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.statements = 0  # how many statements ran (for tests and benchmarks)
        self.calls = 0

    async def __call__(self, item: _In) -> _Out:
        future: asyncio.Future[_Out] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self.calls += 1
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:GROUP_MAX], self._waiting[GROUP_MAX:]
                self.statements += 1
                try:
                    outs = await self._run([item for item, _ in group])
                except Exception as e:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(e)
                    continue
                for (_, future), out in zip(group, outs, strict=True):
                    if not future.done():  # its caller may have been cancelled
                        future.set_result(out)
        finally:
            self._flushing = None


async def _keep(conn: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool: nothing. Each use here is one
    autocommit statement that leaves no session state behind (no SET, LISTEN, cursor or
    advisory lock; asyncpg still rolls back a transaction left open), so asyncpg's default reset
    (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``, a round trip on every
    release: a quarter of the process's database work here) is skipped."""


@dataclass(frozen=True, slots=True)
class Found:
    """What :meth:`PgDeliveries.look` read just before a send."""

    sent: bool  # the delivery was sent meanwhile (its claim has been dropped again)
    alert_shown: bool  # the alert it carries was shown already
    user: ChatUser | None  # the chat user the delivery is for


class PgDeliveries:
    def __init__(self, dsn: str, pool_size: int = POOL_SIZE) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._claims: _Group[tuple[str, int, int], Claim] = _Group(self._claim_many)
        self._looks: _Group[tuple[str, str | None, str], Found] = _Group(self._look_many)
        self._sents: _Group[tuple[str, int, str | None], None] = _Group(self._sent_many)

    @property
    def groups(self) -> dict[str, _Group[Any, Any]]:
        """The grouped statements by kind (their counts show how well calls were grouped)."""
        return {"claim": self._claims, "look": self._looks, "sent": self._sents}

    async def _connection_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=1,
                        max_size=self.pool_size,
                        reset=_keep,
                        server_settings=PLANS,
                    )
        return self._pool

    async def open(self) -> None:
        """Connect now (at start-up) rather than on the first delivery."""
        await self._connection_pool()

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def first_time(self, key: str, now: int) -> bool:
        """:func:`bot.store.repo.first_time`."""
        pool = await self._connection_pool()
        return await pool.fetchval(FIRST_TIME, key[:120], now) is not None

    async def first_time_and_claim(
        self, key: str, scoped_id: str, now: int, lease_s: int
    ) -> Claim | None:
        """Record ``key`` (a nonce) and claim the delivery ``scoped_id`` in one statement; None
        (nothing written) if ``key`` was recorded before (a replay). CLAIMED must be followed
        by :meth:`look` before sending."""
        pool = await self._connection_pool()
        row = await pool.fetchrow(
            FIRST_TIME_AND_CLAIM,
            key[:120],
            _key("pending", scoped_id),
            _key("sent", scoped_id),
            now,
            now - lease_s,
        )
        assert row is not None
        fresh, sent, claimed = row
        if not fresh:
            return None
        if sent:
            return Claim.SENT
        return Claim.CLAIMED if claimed else Claim.BUSY

    async def claim(self, scoped_id: str, now: int, lease_s: int) -> Claim:
        """Claim the delivery ``scoped_id`` (a message of a batch, whose nonce was recorded for
        the whole request), grouped with the claims made meanwhile. CLAIMED must be followed by
        :meth:`look` before sending."""
        return await self._claims((scoped_id, now, lease_s))

    async def _claim_many(self, wanted: list[tuple[str, int, int]]) -> list[Claim]:
        pool = await self._connection_pool()
        if len(wanted) == 1:
            scoped_id, now, lease_s = wanted[0]
            row = await pool.fetchrow(
                CLAIM, _key("pending", scoped_id), _key("sent", scoped_id), now, now - lease_s
            )
            assert row is not None
            return [_claim(*row)]
        # a delivery claimed twice in one group: the second finds the first's claim (BUSY),
        # as it would one statement later
        first: dict[str, int] = {}
        for n, (scoped_id, _, _) in enumerate(wanted):
            first.setdefault(_key("pending", scoped_id), n)
        unique = sorted(first.values())
        rows = await pool.fetch(
            CLAIM_MANY,
            [_key("pending", wanted[n][0]) for n in unique],
            [_key("sent", wanted[n][0]) for n in unique],
            [wanted[n][1] for n in unique],
            [wanted[n][1] - wanted[n][2] for n in unique],
        )
        got = {n: _claim(r["sent"], r["claimed"]) for n, r in zip(unique, rows, strict=True)}
        out = []
        for n, (scoped_id, _, _) in enumerate(wanted):
            mine = got.get(n)
            if mine is None:
                earlier = got[first[_key("pending", scoped_id)]]
                mine = Claim.SENT if earlier is Claim.SENT else Claim.BUSY
            out.append(mine)
        return out

    async def look(self, scoped_id: str, alert_id: str | None, subject_id: str) -> Found:
        """After a claim, before the send: "sent" committed since (then the claim is dropped
        again and the caller answers "duplicate"), the alert shown, the user; grouped with the
        looks made meanwhile."""
        return await self._looks((scoped_id, alert_id, subject_id))

    async def _look_many(self, wanted: list[tuple[str, str | None, str]]) -> list[Found]:
        pool = await self._connection_pool()
        alerts = [_key("alert", a) if a is not None else None for _, a, _ in wanted]
        if len(wanted) == 1:
            one = await pool.fetchrow(LOOK, _key("sent", wanted[0][0]), alerts[0], wanted[0][2])
            assert one is not None
            rows = [one]
        else:
            rows = await pool.fetch(
                LOOK_MANY, [_key("sent", w[0]) for w in wanted], alerts, [w[2] for w in wanted]
            )
        found = [_found(r) for r in rows]
        dropped = [_key("pending", w[0]) for w, f in zip(wanted, found, strict=True) if f.sent]
        if dropped:
            await pool.execute(DROP_MANY, dropped)
        return found

    async def mark_sent(self, scoped_id: str, now: int, alert_id: str | None = None) -> None:
        """:func:`bot.store.deliveries.mark_sent`, grouped with the ones made meanwhile;
        returns once it is committed."""
        await self._sents((scoped_id, now, alert_id))

    async def _sent_many(self, wanted: list[tuple[str, int, str | None]]) -> list[None]:
        pool = await self._connection_pool()
        if len(wanted) == 1:
            scoped_id, now, alert_id = wanted[0]
            pending, sent = _key("pending", scoped_id), _key("sent", scoped_id)
            if alert_id is None:
                await pool.execute(SENT, pending, sent, now)
            else:
                await pool.execute(SENT_ALERT, pending, sent, now, _key("alert", alert_id))
            return [None]
        keys: dict[str, int] = {}  # each key once, at its latest time
        for scoped_id, now, alert_id in wanted:
            for key in (_key("sent", scoped_id), alert_id and _key("alert", alert_id)):
                if key:
                    keys[key] = max(now, keys.get(key, now))
        await pool.execute(
            SENT_MANY,
            [_key("pending", w[0]) for w in wanted],
            list(keys),
            list(keys.values()),
        )
        return [None] * len(wanted)


def _claim(sent: bool, claimed: bool) -> Claim:
    if sent:
        return Claim.SENT
    return Claim.CLAIMED if claimed else Claim.BUSY


def _found(row: Any) -> Found:
    user = None
    if row["telegram_user_id"] is not None:
        user = ChatUser(
            telegram_user_id=row["telegram_user_id"],
            chat_id=row["chat_id"],
            subject_id=row["subject_id"],
            language=row["language"],
            time_zone=row["time_zone"],
        )
    return Found(sent=bool(row["sent"]), alert_shown=bool(row["alert_shown"]), user=user)
