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

Same rows and outcomes as :mod:`bot.store.deliveries` (``seen_deliveries``, keys ``nonce:``,
``pending:``, ``sent:``, ``alert:``), which still renews and releases claims, so exactly once as
the user sees it holds across a kill as before; processes on either path may share a database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from bot.store.deliveries import Claim
from bot.store.tables import ChatUser

POOL_SIZE = 4  # each statement is one short round trip: a few connections keep up with 200/s


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

    async def _connection_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=self.pool_size, reset=_keep
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
        the whole request) in one statement. CLAIMED must be followed by :meth:`look` before
        sending."""
        pool = await self._connection_pool()
        row = await pool.fetchrow(
            CLAIM, _key("pending", scoped_id), _key("sent", scoped_id), now, now - lease_s
        )
        assert row is not None
        sent, claimed = row
        if sent:
            return Claim.SENT
        return Claim.CLAIMED if claimed else Claim.BUSY

    async def look(self, scoped_id: str, alert_id: str | None, subject_id: str) -> Found:
        """After a claim, before the send: "sent" committed since (then the claim is dropped
        again and the caller answers "duplicate"), the alert shown, the user."""
        pool = await self._connection_pool()
        alert = _key("alert", alert_id) if alert_id is not None else None
        row = await pool.fetchrow(LOOK, _key("sent", scoped_id), alert, subject_id)
        assert row is not None
        if row["sent"]:
            await pool.execute(DROP, _key("pending", scoped_id))
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

    async def mark_sent(self, scoped_id: str, now: int, alert_id: str | None = None) -> None:
        """:func:`bot.store.deliveries.mark_sent`."""
        pool = await self._connection_pool()
        pending, sent = _key("pending", scoped_id), _key("sent", scoped_id)
        if alert_id is None:
            await pool.execute(SENT, pending, sent, now)
        else:
            await pool.execute(SENT_ALERT, pending, sent, now, _key("alert", alert_id))
