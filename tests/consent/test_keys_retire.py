"""``chatbank keys retire`` drops the KEK versions no data key uses, never the current one and
never one that still wraps a data key."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbank.cli import main
from chatbank.keys import RetireRefusedError, retire, rotate
from consent.domain.scopes import Scope
from consent.settings import BrokerSettings
from consent.store.db import make_engine, session_factory
from consent.store.migrate import upgrade_async
from consent.store.secrets import create_data_key, data_key
from consent.store.tables import ConsentRow, PlatformClient, Subject
from consent.vault.envelope import new_data_key, wrap_key
from consent.vault.keyring import load_keyring_file
from consent.vault.source import KeySource

NOW = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
async def settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> BrokerSettings:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("CONSENT_DATABASE_URL", database_url)
    monkeypatch.setenv("CONSENT_KEYRING_FILE", str(tmp_path / "kek"))
    await upgrade_async(database_url)
    return BrokerSettings()


async def _store_keys(settings: BrokerSettings, consent_ids: list[str]) -> dict[str, bytes]:
    """Data keys for these consents under the current KEK (and a platform client's key, which
    ``rotate`` re-wraps too)."""
    ring = KeySource(path=Path(settings.keyring_file)).ring
    engine = make_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            session.add(
                PlatformClient(
                    client_id="pc_1",
                    name="bot",
                    secret_hash="0" * 64,
                    webhook_secret=b"x",
                    kek_version=ring.current,
                    wrapped_key=wrap_key(ring, new_data_key(), "platform:pc_1").blob,
                    created_at=NOW,
                )
            )
            await session.flush()
            session.add(Subject(subject_id="sub_1", client_id="pc_1", created_at=NOW))
            await session.flush()
            for c in consent_ids:
                session.add(
                    ConsentRow(
                        consent_id=c,
                        subject_id="sub_1",
                        client_id="pc_1",
                        bank_id="northwind",
                        scopes=frozenset({Scope.BALANCES}),
                        purpose="chat-service",
                        status="authorized",
                        created_at=NOW,
                        expires_at=NOW + timedelta(days=90),
                        state=f"state-{c}",
                    )
                )
            await session.flush()
            keys = {c: await create_data_key(session, ring, c) for c in consent_ids}
            await session.commit()
    finally:
        await engine.dispose()
    return keys


async def _open(settings: BrokerSettings, consent_id: str) -> bytes | None:
    ring = load_keyring_file(Path(settings.keyring_file))
    engine = make_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            return await data_key(session, ring, consent_id)
    finally:
        await engine.dispose()


async def test_retire_drops_only_versions_no_data_key_uses(settings: BrokerSettings) -> None:
    keys = await _store_keys(settings, ["con_a", "con_b"])
    assert await retire(settings) == []  # version 1 is current and in use
    with pytest.raises(RetireRefusedError, match="current"):
        await retire(settings, 1)

    KeySource(path=Path(settings.keyring_file)).rotate()  # version 2, nothing re-wrapped yet
    with pytest.raises(RetireRefusedError, match="still wraps data keys"):
        await retire(settings, 1)
    assert await retire(settings) == []
    assert sorted(load_keyring_file(Path(settings.keyring_file)).keys) == [1, 2]

    version, changed = await rotate(settings)  # version 3; both keys re-wrapped under it
    assert (version, changed) == (3, 3)  # two consents' keys and the client's
    assert await retire(settings) == [1, 2]
    ring = load_keyring_file(Path(settings.keyring_file))
    assert (sorted(ring.keys), ring.current) == ([3], 3)
    assert os.stat(settings.keyring_file).st_mode & 0o777 == 0o600
    for consent_id, key in keys.items():
        assert await _open(settings, consent_id) == key
    with pytest.raises(RetireRefusedError, match="not in the key file"):
        await retire(settings, 1)


def test_the_command_line_retires_and_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONSENT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'consent.db'}")
    monkeypatch.setenv("CONSENT_KEYRING_FILE", str(tmp_path / "kek"))
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    assert main(["db", "upgrade"]) == 0
    asyncio.run(_store_keys(BrokerSettings(), ["con_a"]))
    KeySource(path=tmp_path / "kek").rotate()
    capsys.readouterr()
    assert main(["keys", "retire", "--version", "1"]) == 1
    assert "still wraps data keys" in capsys.readouterr().err
    assert main(["keys", "retire", "--version", "2"]) == 1
    assert "is the current one" in capsys.readouterr().err
    assert main(["keys", "rotate"]) == 0
    assert main(["keys", "retire"]) == 0
    assert "retired KEK versions 1, 2" in capsys.readouterr().out
    assert main(["keys", "retire"]) == 0
    assert "no KEK version can be retired" in capsys.readouterr().out
