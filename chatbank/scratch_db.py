"""Throwaway PostgreSQL databases for tests and benchmarks: created empty on the server a URL
names, dropped afterwards (even with connections still open).

Any URL form the services accept works: ``postgresql://``, ``postgresql+asyncpg://``, a
password, and query parameters such as ``?host=/var/run/postgresql`` (the server's Unix socket)
are kept; only the database name changes."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence

import asyncpg
from sqlalchemy.engine import make_url

from consent.store.pgpool import postgres_dsn


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name`` (driver, credentials and query
    parameters kept)."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise ValueError("the URL names no database")
    return name


def _admin_dsn(server_url: str) -> str:
    dsn = postgres_dsn(server_url)
    if dsn is None:
        raise ValueError(f"not a PostgreSQL URL: {make_url(server_url).drivername}")
    return dsn


async def create_databases(server_url: str, count: int, prefix: str = "chatbank_test") -> list[str]:
    """``count`` new empty databases on the server of ``server_url``; their URLs, in the form
    of ``server_url``."""
    names = [f"{prefix}_{secrets.token_hex(4)}" for _ in range(count)]
    admin = await asyncpg.connect(_admin_dsn(server_url))
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return [database_url(server_url, name) for name in names]


async def drop_databases(server_url: str, urls: Sequence[str]) -> None:
    """Drop the databases ``urls`` name (made by :func:`create_databases`), connections and
    all; a database already gone is no error."""
    admin = await asyncpg.connect(_admin_dsn(server_url))
    try:
        for url in urls:
            name = database_name(url).replace('"', '""')
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def scratch_databases(
    server_url: str, count: int, prefix: str = "chatbank_test"
) -> AsyncIterator[list[str]]:
    """``count`` throwaway databases for the duration of the block."""
    urls = await create_databases(server_url, count, prefix)
    try:
        yield urls
    finally:
        await drop_databases(server_url, urls)
