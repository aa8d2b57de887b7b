"""Migrations, constraints, indexes and time zones on both databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from factories import empty_tables, make_connection, make_provider
from linkvault.adapters.clock import FakeClock
from linkvault.adapters.sqlalchemy.connection_repository import (
    SqlAlchemyConnectionRepository,
    expiring_soon_statement,
)
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.migrate import current_revision
from linkvault.adapters.sqlalchemy.provider_repository import (
    SqlAlchemyProviderRepository,
)
from linkvault.adapters.sqlalchemy.tables import metadata, provider_connections
from linkvault.domain import Provider

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def provider(database: Database, clock: FakeClock) -> Provider:
    provider = make_provider("sandbox")
    async with database.session() as session:
        await SqlAlchemyProviderRepository(session, clock).save(provider)
    return provider


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "target_metadata": metadata}
    )
    return list(compare_metadata(context, metadata))


async def test_models_match_migrations(database: Database) -> None:
    async with database.engine.connect() as connection:
        differences = await connection.run_sync(_differences)

    assert differences == []
    assert await current_revision(database) is not None


async def _insert_raw(database: Database, provider: Provider, **values: object) -> None:
    now = datetime.now(UTC)
    row: dict[str, object] = {
        "id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "provider_id": provider.id,
        "provider_slug": provider.slug,
        "status": "pending",
        "refresh_failures": 0,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    row.update(values)
    async with database.session() as session:
        await session.execute(sa.insert(provider_connections).values(**row))


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"status": "paused"}, "status"),
        ({"status": "active"}, "active_has_credentials"),
        (
            {
                "status": "disconnected",
                "credentials": b"x",
                "credential_type": "oauth2",
            },
            "disconnected_has_no_credentials",
        ),
        ({"credentials": b"x"}, "credentials_have_type"),
        ({"credentials": b"x", "credential_type": "password"}, "credential_type"),
        ({"version": 0}, "version_positive"),
    ],
)
async def test_check_constraints_enforced(
    database: Database,
    provider: Provider,
    values: dict[str, object],
    constraint: str,
) -> None:
    with pytest.raises(sa.exc.IntegrityError) as caught:
        await _insert_raw(database, provider, **values)

    assert constraint in str(caught.value.orig)


async def test_partial_indexes_have_predicates(database: Database) -> None:
    if database.dialect_name == "postgresql":
        query = (
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'provider_connections' "
            "AND schemaname = current_schema()"
        )
    else:
        query = (
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'provider_connections'"
        )
    async with database.session(readonly=True) as session:
        definitions = {name: sql for name, sql in await session.execute(sa.text(query))}

    for name in ("ix_provider_connections_due", "ix_provider_connections_expiring"):
        assert name in definitions
        normalised = definitions[name].replace("(", "").replace(")", "")
        assert "status = 'active'" in normalised.replace("::text", "")


@pytest.fixture
def sydney_time_zone() -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Australia/Sydney"
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()


@pytest.mark.usefixtures("sydney_time_zone")
async def test_datetimes_utc_under_sydney_tz(
    database: Database, provider: Provider
) -> None:
    assert time.localtime().tm_gmtoff != 0
    sydney = timezone(timedelta(hours=11))
    created = datetime(2026, 1, 15, 8, 0, tzinfo=sydney)
    connection = make_connection(provider, created)
    async with database.session() as session:
        await SqlAlchemyConnectionRepository(session).save(connection)

    async with database.session(readonly=True) as session:
        found = await SqlAlchemyConnectionRepository(session).find_by_id(connection.id)

    assert found is not None
    assert found.created_at.tzinfo is UTC
    assert found.created_at == created
    assert found.created_at.hour == 21
    assert found.credentials is not None
    assert found.credentials.expires_at == created + timedelta(hours=1)


async def test_naive_datetime_rejected(database: Database, provider: Provider) -> None:
    with pytest.raises(sa.exc.StatementError, match="Naive datetime"):
        await _insert_raw(database, provider, created_at=datetime(2026, 1, 1))


@pytest.mark.postgres
async def test_postgres_session_time_zone_utc(postgres_database: Database) -> None:
    async with postgres_database.session(readonly=True) as session:
        zone = (await session.execute(sa.text("SHOW timezone"))).scalar_one()

    assert zone == "UTC"


@pytest.mark.postgres
async def test_postgres_jit_off(postgres_database: Database) -> None:
    async with postgres_database.session(readonly=True) as session:
        jit = (await session.execute(sa.text("SHOW jit"))).scalar_one()

    assert jit == "off"


@pytest.mark.postgres
async def test_postgres_reads_utc_in_any_session_time_zone(
    postgres_database: Database,
) -> None:
    # UTCDateTime leaves asyncpg's values as they are, which is right only if
    # asyncpg tags them UTC whatever the session's time zone is.
    await empty_tables(postgres_database)
    provider = make_provider("zoned")
    created = datetime(2026, 1, 15, 21, 0, tzinfo=UTC)
    connection = make_connection(provider, created)
    async with postgres_database.session() as session:
        await SqlAlchemyProviderRepository(session).save(provider)
        await SqlAlchemyConnectionRepository(session).save(connection)

    async with postgres_database.session() as session:
        await session.execute(sa.text("SET LOCAL TIME ZONE 'Australia/Sydney'"))
        repository = SqlAlchemyConnectionRepository(session)
        found = await repository.find_by_id(connection.id)

    assert found is not None
    assert found.created_at.tzinfo is UTC
    assert found.created_at == created
    assert found.created_at.hour == 21


async def _fill_connections(database: Database, provider: Provider, count: int) -> None:
    now = datetime.now(UTC)
    rows = []
    for index in range(count):
        status = "active" if index % 10 < 8 else "expired"
        rows.append(
            {
                "id": uuid.uuid4(),
                "user_id": uuid.uuid4(),
                "provider_id": provider.id,
                "provider_slug": provider.slug,
                "status": status,
                "credentials": b"blob",
                "credential_type": "oauth2",
                "credentials_expires_at": now + timedelta(minutes=index % 10_080),
                "refresh_failures": 0,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    async with database.session() as session:
        await session.execute(sa.insert(provider_connections), rows)
        await session.execute(sa.text("ANALYZE provider_connections"))


@pytest.mark.postgres
async def test_expiring_soon_uses_partial_index(
    postgres_database: Database, clock: FakeClock
) -> None:
    await empty_tables(postgres_database)
    provider = make_provider("explained")
    async with postgres_database.session() as session:
        await SqlAlchemyProviderRepository(session).save(provider)
    await _fill_connections(postgres_database, provider, 12_000)

    statement = expiring_soon_statement(clock.now(), 1000)
    compiled = statement.compile(dialect=postgres_database.engine.dialect)
    async with postgres_database.engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        # The generic plan is what a cached prepared statement switches to.
        await raw.execute("SET plan_cache_mode = force_generic_plan")
        await raw.execute(f"PREPARE lv_expiring AS {compiled}")
        horizon = (clock.now() + timedelta(minutes=30)).isoformat()
        plan_rows = await raw.fetch(f"EXPLAIN EXECUTE lv_expiring('{horizon}', 1000)")
        await raw.execute("DEALLOCATE lv_expiring")
        await raw.execute("RESET plan_cache_mode")
    plan = "\n".join(row[0] for row in plan_rows)

    assert "ix_provider_connections_expiring" in plan, plan
    assert "Seq Scan on provider_connections" not in plan, plan


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_alembic_cli_upgrade_head(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    else:
        request.applymarker(pytest.mark.postgres)
        base = sa.make_url(request.getfixturevalue("postgres_base_url"))
        name = f"lv_cli_{uuid.uuid4().hex[:8]}"
        _run_sql(base, f'CREATE DATABASE "{name}"')
        url = base.set(database=name).render_as_string(hide_password=False)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT,
            env={**os.environ, "LINKVAULT_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        tables = _table_names(url)
    finally:
        if backend == "postgres":
            _run_sql(base, f'DROP DATABASE IF EXISTS "{name}"')

    assert {
        "providers",
        "provider_connections",
        "connection_events",
        "oauth_states",
    } <= tables


def _run_sql(url: sa.URL, statement: str) -> None:
    async def run() -> None:
        # CREATE and DROP DATABASE cannot run inside a transaction block.
        database = Database.from_url(url, isolation_level="AUTOCOMMIT")
        try:
            async with database.engine.connect() as connection:
                await connection.execute(sa.text(statement))
        finally:
            await database.dispose()

    asyncio.run(run())


def _table_names(url: str) -> set[str]:
    async def run() -> set[str]:
        database = Database.from_url(url)
        try:
            async with database.engine.connect() as connection:
                names = await connection.run_sync(
                    lambda sync: sa.inspect(sync).get_table_names()
                )
            return set(names)
        finally:
            await database.dispose()

    return asyncio.run(run())
