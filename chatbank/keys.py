"""``chatbank keys rotate``: a new key-encryption key; every data key re-wrapped under it."""

from __future__ import annotations

from pathlib import Path

from consent.settings import BrokerSettings
from consent.store.db import make_engine, session_factory
from consent.store.secrets import rewrap_all
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
