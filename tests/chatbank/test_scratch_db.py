"""Throwaway PostgreSQL databases: any URL form an operator writes keeps working, the Unix
socket one (``?host=/var/run/postgresql``) included, and nothing is left behind."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from chatbank.scratch_db import (
    create_databases,
    database_name,
    database_url,
    drop_databases,
    scratch_databases,
)
from consent.store.pgpool import postgres_dsn

PG_ENV = "CHATBANK_TEST_POSTGRES_URL"
names = st.from_regex(r"[a-z][a-z0-9_]{0,40}", fullmatch=True)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://postgres@127.0.0.1:5432/x"),
        (
            "postgresql+asyncpg://u:p%40ss@db.internal/postgres",
            "postgresql+asyncpg://u:p%40ss@db.internal/x",
        ),
        (
            "postgresql://postgres@/postgres?host=/var/run/postgresql",
            "postgresql://postgres@/x?host=%2Fvar%2Frun%2Fpostgresql",
        ),
    ],
)
def test_only_the_database_name_changes(server: str, expected: str) -> None:
    assert database_url(server, "x") == expected
    assert database_name(expected) == "x"


@given(
    name=names,
    user=st.sampled_from(["postgres", "app"]),
    password=st.sampled_from([None, "s3cret", "p@ss/w:rd"]),
    socket=st.booleans(),
)
def test_driver_credentials_and_query_survive(
    name: str, user: str, password: str | None, socket: bool
) -> None:
    server = make_url("postgresql+asyncpg://h:5432/postgres").set(
        username=user,
        password=password,
        host=None if socket else "h",
        query={"host": "/var/run/postgresql"} if socket else {},
    )
    url = make_url(database_url(server.render_as_string(hide_password=False), name))
    assert url.database == name
    assert (url.drivername, url.username, url.password, url.host, url.port, dict(url.query)) == (
        server.drivername,
        server.username,
        server.password,
        server.host,
        server.port,
        dict(server.query),
    )


async def test_a_url_without_a_database_or_not_postgresql_is_refused() -> None:
    with pytest.raises(ValueError, match="no database"):
        database_name("postgresql://postgres@127.0.0.1:5432")
    with pytest.raises(ValueError, match="not a PostgreSQL URL: sqlite"):
        await create_databases("sqlite+aiosqlite:///x.db", 1)


def _server() -> str:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (CI sets it); PostgreSQL tests skipped")
    return base


async def _exists(server: str, name: str) -> bool:
    dsn = postgres_dsn(server)
    assert dsn is not None
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def test_databases_are_created_empty_and_dropped_with_open_connections() -> None:
    server = _server()
    async with scratch_databases(server, 2, "chatbank_scratch") as urls:
        assert len(set(urls)) == 2
        dsn = postgres_dsn(urls[0])
        assert dsn is not None
        held = await asyncpg.connect(dsn)  # still open when the block ends
        tables = await held.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables == 0
        assert all([await _exists(server, database_name(u)) for u in urls])
    assert not any([await _exists(server, database_name(u)) for u in urls])
    assert held.is_closed() or not await _alive(held)


async def _alive(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
        return False
    return True


async def test_the_servers_unix_socket_url_works() -> None:
    server = make_url(_server())
    socket_dir = Path("/var/run/postgresql")
    if not (socket_dir / f".s.PGSQL.{server.port or 5432}").exists():
        pytest.skip("the PostgreSQL server has no Unix socket in /var/run/postgresql here")
    via_socket = server.set(host=None, query={"host": str(socket_dir)}).render_as_string(
        hide_password=False
    )
    (url,) = await create_databases(via_socket, 1, "chatbank_scratch")
    try:
        assert "host=%2Fvar%2Frun%2Fpostgresql" in url
        assert await _exists(via_socket, database_name(url))
    finally:
        await drop_databases(via_socket, [url])
    assert not await _exists(via_socket, database_name(url))
