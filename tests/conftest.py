"""Shared fixtures: real databases (SQLite file and PostgreSQL) and test data.

PostgreSQL comes from LINKVAULT_TEST_POSTGRES_URL, by default the local test
server. Each run works in its own schema, dropped afterwards. When the server
cannot be reached, PostgreSQL tests are skipped with the reason, except with
CI=true, where the run fails instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from factories import empty_tables
from linkvault.adapters.clock import FakeClock
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.migrate import upgrade

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("LINKVAULT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


async def _probe_postgres(url: str) -> str | None:
    database = Database.from_url(url)
    try:
        await database.check()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    finally:
        await database.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    """The PostgreSQL URL, or a skip (a failure under CI) when it is unreachable."""
    url = postgres_url()
    problem = asyncio.run(_probe_postgres(url))
    if problem is not None:
        message = (
            f"PostgreSQL at {url} is unreachable ({problem}). Start it or set "
            "LINKVAULT_TEST_POSTGRES_URL."
        )
        if in_ci():
            pytest.fail(f"CI=true requires PostgreSQL: {message}")
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {message}")
    return url


async def _create_schema(url: str, schema: str, *, drop: bool = False) -> None:
    database = Database.from_url(url)
    statement = (
        f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'
        if drop
        else f'CREATE SCHEMA "{schema}"'
    )
    try:
        async with database.session() as session:
            await session.execute(sa.text(statement))
    finally:
        await database.dispose()


@pytest.fixture(scope="session")
async def postgres_database(postgres_base_url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL database in a schema of its own."""
    schema = f"lv_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await _create_schema(postgres_base_url, schema)
    database = Database.from_url(
        postgres_base_url,
        connect_args={"server_settings": {"search_path": schema}},
    )
    try:
        await upgrade(database)
        yield database
    finally:
        await database.dispose()
        await _create_schema(postgres_base_url, schema, drop=True)


@pytest.fixture(scope="session")
async def sqlite_database(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Database]:
    """A migrated SQLite database in a file (not `:memory:`, to test real locking)."""
    path: Path = tmp_path_factory.mktemp("sqlite") / "linkvault.db"
    database = Database.from_url(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(database)
        yield database
    finally:
        await database.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_database(request: pytest.FixtureRequest) -> Database:
    """Each backend in turn; a sync fixture so it can pick the session fixture."""
    name = f"{request.param}_database"
    database: Database = request.getfixturevalue(name)
    return database


@pytest.fixture
async def database(backend_database: Database) -> Database:
    """Each backend in turn, emptied before the test."""
    await empty_tables(backend_database)
    return backend_database


@pytest.fixture
def cli_workspace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working folder with no LINKVAULT_* variable leaking in."""
    for name in list(os.environ):
        if name.startswith("LINKVAULT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
