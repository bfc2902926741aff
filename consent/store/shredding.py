"""Making crypto-shredding real on disk.

Deleting a consent's data key and sealed tokens removes them from the tables, but SQLite keeps
the deleted bytes in free pages and in the write-ahead log until they are overwritten. Every
SQLite connection of the broker runs with ``PRAGMA secure_delete=ON`` (deleted content is
zeroed in place, see :mod:`consent.store.db`); after a shredding commits, :func:`settle`
checkpoints the WAL into the database file and truncates it, so neither file holds the bytes.

PostgreSQL cannot be told to forget: a deleted row stays in its heap page as a dead tuple until
VACUUM, VACUUM only marks the space free (the bytes stay until the page is reused), and the
write-ahead log keeps the inserted row until its segment is recycled (and in any archive or
replica). There the guarantee is the key ring's: once the KEK version that wrapped a shredded
data key is retired (``chatbank keys rotate`` then ``chatbank keys retire``), no lingering copy
of it can be unwrapped. See the README's security section."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


async def settle(engine: AsyncEngine) -> None:
    """After a shredding committed: on SQLite, move the WAL into the database file (where
    secure_delete has zeroed the deleted cells) and truncate the WAL to zero bytes."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:
        result = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
    if result[0]:
        # a reader held an old snapshot past the busy timeout; the next checkpoint finishes it
        log.warning("the WAL checkpoint after shredding could not complete yet")
