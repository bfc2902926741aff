"""``chatbank keys rotate``: a new key-encryption key, every data key re-wrapped under it;
``chatbank keys retire``: drop the KEK versions no data key is wrapped under any more."""

from __future__ import annotations

from pathlib import Path

from consent.settings import BrokerSettings
from consent.store.db import make_engine, session_factory
from consent.store.secrets import kek_versions_in_use, rewrap_all
from consent.vault.source import KeySource


async def rotate(settings: BrokerSettings) -> tuple[int, int]:
    """Add KEK version N+1 to the key file, then re-wrap; returns (new version, keys re-wrapped).

    The key file is written first, so a running broker (which re-reads it) can open keys under
    both versions while the re-wrap runs. Retire the old version once this has finished."""
    if settings.keyring.get_secret_value():
        raise SystemExit("CONSENT_KEYRING is set: rotate by adding a version to it, then run again")
    source = KeySource(path=Path(settings.keyring_file))
    ring = source.rotate()
    engine = make_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            changed = await rewrap_all(session, ring)
            await session.commit()
    finally:
        await engine.dispose()
    return ring.current, changed


class RetireRefusedError(Exception):
    """The version asked for is the current one or still wraps a data key."""


async def retire(settings: BrokerSettings, version: int | None = None) -> list[int]:
    """Drop KEK versions from the key file: ``version`` alone, or every version that is neither
    current nor used by any stored data key. Returns the versions dropped.

    Retiring is what makes shredding final where the database keeps deleted bytes (PostgreSQL
    dead tuples and WAL, backups): a wrapped data key left behind there cannot be unwrapped once
    its KEK version is gone."""
    if settings.keyring.get_secret_value():
        raise SystemExit("CONSENT_KEYRING is set: retire by removing a version from it")
    source = KeySource(path=Path(settings.keyring_file))
    ring = source.ring
    engine = make_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            used = await kek_versions_in_use(session)
    finally:
        await engine.dispose()
    if version is not None:
        if version not in ring.keys:
            raise RetireRefusedError(f"KEK version {version} is not in the key file")
        if version == ring.current:
            raise RetireRefusedError(f"KEK version {version} is the current one")
        if version in used:
            raise RetireRefusedError(
                f"KEK version {version} still wraps data keys: run `chatbank keys rotate` first"
            )
        drop = {version}
    else:
        drop = {v for v in ring.keys if v != ring.current and v not in used}
    if drop:
        source.replace(ring.without(drop))
    return sorted(drop)
