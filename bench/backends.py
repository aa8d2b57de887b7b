"""Set-up and tear-down of the benchmark databases.

PostgreSQL: a database of its own (created when missing) and a schema in it
that is dropped and re-created per run. SQLite: a file in a temporary folder,
or in `--sqlite-dir`. Both are migrated with the project's Alembic migrations.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL, make_url

from bench.raw import PostgresDriver, RawDriver, SqliteDriver
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.migrate import upgrade

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/linkvault_bench"
DEFAULT_SCHEMA = "lv_bench"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Locations of the benchmark databases, and whether to keep them."""

    postgres_url: str = DEFAULT_POSTGRES_URL
    postgres_schema: str = DEFAULT_SCHEMA
    sqlite_dir: Path | None = None
    keep: bool = False


@dataclass(frozen=True, slots=True)
class Backend:
    """An open benchmark database: the library's view and the raw driver's."""

    name: str
    database: Database
    driver: RawDriver
    server_version: str | None


@asynccontextmanager
async def open_backend(
    name: str, size: int, options: BackendOptions
) -> AsyncIterator[Backend]:
    """Open an empty, migrated database for `name` ("sqlite" or "postgres")."""
    if name == "postgres":
        async with _postgres(options) as backend:
            yield backend
    elif name == "sqlite":
        async with _sqlite(size, options) as backend:
            yield backend
    else:
        raise ValueError(
            f"Unknown backend {name!r}; choose sqlite, postgres or both "
            "(--backends sqlite,postgres)."
        )


@asynccontextmanager
async def _postgres(options: BackendOptions) -> AsyncIterator[Backend]:
    url = make_url(options.postgres_url)
    schema = _checked_schema(options.postgres_schema)
    dsn = _dsn(url)
    await _create_database(url)
    await _execute(
        dsn, f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    )

    database = Database.from_url(
        url, connect_args={"server_settings": {"search_path": schema}}
    )
    driver: PostgresDriver | None = None
    try:
        await upgrade(database)
        driver = await PostgresDriver.connect(dsn, schema)
        version = await driver.server_version()
        yield Backend("postgres", database, driver, version)
    finally:
        if driver is not None:
            await driver.close()
        await database.dispose()
        if not options.keep:
            await _execute(dsn, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _checked_schema(schema: str) -> str:
    if not _IDENTIFIER.fullmatch(schema):
        raise ValueError(
            f"Schema name {schema!r} is invalid; use lowercase letters, digits "
            "and underscores, starting with a letter (for example lv_bench)."
        )
    return schema


def _dsn(url: URL) -> str:
    """Return the URL in the form asyncpg accepts (no `+asyncpg` driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _execute(dsn: str, sql: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _create_database(url: URL) -> None:
    """Create the benchmark database on first use, from the `postgres` database."""
    name = url.database or ""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"Database name {name!r} in the PostgreSQL URL is invalid; use "
            "lowercase letters, digits and underscores (for example linkvault_bench)."
        )
    connection = await asyncpg.connect(_dsn(url.set(database="postgres")))
    try:
        exists = await connection.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", name
        )
        if not exists:
            await connection.execute(f"CREATE DATABASE {name}")
    finally:
        await connection.close()


@asynccontextmanager
async def _sqlite(size: int, options: BackendOptions) -> AsyncIterator[Backend]:
    directory = options.sqlite_dir or Path(tempfile.mkdtemp(prefix="linkvault-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bench-{size}.db"
    _remove_database_files(path)

    database = Database.from_url(f"sqlite+aiosqlite:///{path}")
    driver: SqliteDriver | None = None
    try:
        await upgrade(database)
        driver = await SqliteDriver.connect(path)
        yield Backend("sqlite", database, driver, None)
    finally:
        if driver is not None:
            await driver.close()
        await database.dispose()
        if not options.keep:
            _remove_database_files(path)
            if options.sqlite_dir is None:
                shutil.rmtree(directory, ignore_errors=True)


def _remove_database_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
