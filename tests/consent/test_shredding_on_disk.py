"""Shredding is real on disk: after a revoke, neither the SQLite database file nor its WAL holds
the consent's wrapped data key or sealed tokens. On PostgreSQL the bytes linger (dead tuple,
then free space in the page, and WAL) - the test records that, and that retiring the KEK
version makes whatever lingers useless."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlmodel import select

from consent.store.db import make_engine, session_factory
from consent.store.tables import ConsentKey, SealedSecret
from consent.vault.envelope import WrappedKey, unwrap_key
from consent.vault.keyring import VaultError, parse_keyring
from tests.consent.broker_env import Env, start, stop


@pytest.fixture
async def sqlite_env(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Env]:
    env = await start(tmp_path, sqlite_url)
    yield env
    await stop(env)


async def sealed_bytes(env: Env, consent_id: str) -> list[bytes]:
    """The consent's wrapped data key and sealed token ciphertexts, as stored."""
    engine = make_engine(env.broker_settings.database_url)
    try:
        async with session_factory(engine)() as session:
            key = await session.get(ConsentKey, consent_id)
            assert key is not None
            secrets = (
                await session.exec(
                    select(SealedSecret).where(SealedSecret.consent_id == consent_id)
                )
            ).all()
    finally:
        await engine.dispose()
    blobs = [key.wrapped, *(s.blob for s in secrets)]
    assert len(blobs) >= 3  # the key, the access token and the refresh token
    return blobs


def on_disk(db: Path) -> bytes:
    files = [db, db.with_name(db.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def test_after_a_revoke_no_sqlite_file_holds_the_key_or_the_tokens(
    sqlite_env: Env, tmp_path: Path
) -> None:
    env = sqlite_env
    subject = await env.subject()
    consent_id = await env.link(subject)
    resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    assert resp.status == 200
    blobs = await sealed_bytes(env, consent_id)
    db = tmp_path / "consent.db"
    before = on_disk(db)
    assert all(b in before for b in blobs)  # the search finds them while they are live

    resp = await env.broker.delete(
        f"/v1/subjects/{subject}/consents/{consent_id}", headers=env.auth()
    )
    assert resp.status == 200
    after = on_disk(db)
    assert [b for b in blobs if b in after] == []
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


@pytest.fixture
async def pg_env(tmp_path: Path, postgres_url: str) -> AsyncIterator[Env]:
    env = await start(tmp_path, postgres_url)
    yield env
    await stop(env)


async def _pages(url: str, table: str) -> bytes:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        blocks = await conn.fetchval(f"SELECT pg_relation_size('{table}') / 8192")
        return b"".join(
            [await conn.fetchval("SELECT get_raw_page($1, $2)", table, n) for n in range(blocks)]
        )
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_on_postgres_the_wrapped_key_lingers_until_its_kek_version_is_retired(
    pg_env: Env, postgres_url: str
) -> None:
    """What README's security section states: PostgreSQL keeps a deleted row's bytes in its
    heap page (a dead tuple, then free space), so the final step is retiring the KEK."""
    env = pg_env
    subject = await env.subject()
    consent_id = await env.link(subject)
    wrapped = (await sealed_bytes(env, consent_id))[0]
    resp = await env.broker.delete(
        f"/v1/subjects/{subject}/consents/{consent_id}", headers=env.auth()
    )
    assert resp.status == 200
    assert wrapped in await _pages(postgres_url, "consent_key")  # a dead tuple, still on disk
    ring = parse_keyring(env.broker_settings.keyring.get_secret_value())
    lingering = WrappedKey(ring.current, wrapped)
    assert unwrap_key(ring, lingering, consent_id)  # anyone with the KEK could open it
    retired = ring.with_new_key().without({ring.current})  # keys rotate, then keys retire
    with pytest.raises(VaultError):
        unwrap_key(retired, lingering, consent_id)
