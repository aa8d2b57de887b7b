"""Bulk import through COPY (PostgreSQL) and executemany (SQLite)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from factories import make_connection, make_provider
from linkvault.adapters.clock import FakeClock
from linkvault.adapters.sqlalchemy.bulk import bulk_import
from linkvault.adapters.sqlalchemy.connection_repository import (
    SqlAlchemyConnectionRepository,
)
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.mapping import connection_to_row
from linkvault.adapters.sqlalchemy.provider_repository import (
    SqlAlchemyProviderRepository,
)
from linkvault.adapters.sqlalchemy.tables import provider_connections
from linkvault.domain import (
    ConnectionStatus,
    DuplicateError,
    InvalidConnectionError,
    Provider,
    ProviderConnection,
    ProviderNotFoundError,
)
from linkvault.domain.errors import NaiveDatetimeError


@pytest.fixture
async def provider(database: Database, clock: FakeClock) -> Provider:
    provider = make_provider("sandbox")
    async with database.session() as session:
        await SqlAlchemyProviderRepository(session, clock).save(provider)
    return provider


def every_status(provider: Provider, clock: FakeClock) -> list[ProviderConnection]:
    """Return one connection per status, with every optional field filled."""
    connections = []
    for status in ConnectionStatus:
        connection = make_connection(
            provider, clock.now(), status=status, alias=status.value
        )
        connection.last_sync_at = clock.now() - timedelta(minutes=5)
        connection.last_refresh_at = clock.now() - timedelta(minutes=10)
        connection.last_refresh_error = "temporarily_unavailable"
        connection.refresh_failures = 2
        if connection.credentials is not None:
            connection.refresh_token_expires_at = clock.now() + timedelta(days=7)
        if status is ConnectionStatus.ACTIVE:
            connection.next_refresh_at = clock.now() + timedelta(minutes=40)
        connections.append(connection)
    return connections


async def stored_count(database: Database) -> int:
    statement = sa.select(sa.func.count()).select_from(provider_connections)
    async with database.session(readonly=True) as session:
        return int((await session.execute(statement)).scalar_one())


async def find(database: Database, connection_id: uuid.UUID) -> ProviderConnection:
    async with database.session(readonly=True) as session:
        found = await SqlAlchemyConnectionRepository(session).find_by_id(connection_id)
    assert found is not None
    return found


async def test_bulk_import_stores_every_field(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connections = every_status(provider, clock)

    imported = await bulk_import(database, connections)

    assert imported == len(connections)
    for connection in connections:
        stored = await find(database, connection.id)
        assert connection_to_row(stored) == connection_to_row(connection)
        assert stored.status is connection.status
        assert stored.version == 1


async def test_bulk_import_writes_version_back(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connections = every_status(provider, clock)

    await bulk_import(database, connections)

    assert {connection.version for connection in connections} == {1}


async def test_bulk_import_leaves_lease_empty(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    await bulk_import(database, every_status(provider, clock))

    statement = sa.select(
        provider_connections.c.lease_owner, provider_connections.c.lease_expires_at
    )
    async with database.session(readonly=True) as session:
        leases = (await session.execute(statement)).all()

    assert leases
    assert {tuple(lease) for lease in leases} == {(None, None)}


async def test_bulk_import_rows_work_with_repository(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    soon = make_connection(provider, clock.now(), expires_in=timedelta(minutes=5))
    later = make_connection(provider, clock.now(), expires_in=timedelta(hours=5))
    await bulk_import(database, [soon, later])

    async with database.session() as session:
        repository = SqlAlchemyConnectionRepository(session, clock)
        expiring = await repository.find_expiring_soon()
        soon.alias = "renamed after import"
        await repository.save(soon)

    assert [c.id for c in expiring] == [soon.id]
    assert soon.version == 2
    assert (await find(database, soon.id)).alias == "renamed after import"


async def test_bulk_import_empty_returns_zero(database: Database) -> None:
    assert await bulk_import(database, []) == 0


async def test_bulk_import_rejects_saved_connection(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    saved = make_connection(provider, clock.now())
    saved.version = 3
    fresh = make_connection(provider, clock.now())

    with pytest.raises(InvalidConnectionError, match="already saved"):
        await bulk_import(database, [fresh, saved])

    assert await stored_count(database) == 0
    assert fresh.version == 0


async def test_bulk_import_rejects_broken_invariant(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    broken = make_connection(provider, clock.now())
    broken.credentials = None

    with pytest.raises(InvalidConnectionError, match="active without credentials"):
        await bulk_import(database, [make_connection(provider, clock.now()), broken])

    assert await stored_count(database) == 0


async def test_bulk_import_rejects_repeated_id(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    first = make_connection(provider, clock.now())
    second = make_connection(provider, clock.now())
    second.id = first.id

    with pytest.raises(InvalidConnectionError, match="appears twice"):
        await bulk_import(database, [first, second])

    assert await stored_count(database) == 0


async def test_bulk_import_rejects_naive_datetime(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())
    connection.last_sync_at = datetime(2026, 3, 1, 9, 0)

    with pytest.raises(NaiveDatetimeError, match="last_sync_at"):
        await bulk_import(database, [connection])

    assert await stored_count(database) == 0


async def test_bulk_import_rejects_unknown_provider(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    unknown = make_provider("unknown")
    orphan = make_connection(unknown, clock.now())

    with pytest.raises(ProviderNotFoundError, match=str(unknown.id)):
        await bulk_import(database, [make_connection(provider, clock.now()), orphan])

    assert await stored_count(database) == 0


async def test_bulk_import_stored_id_is_duplicate(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    stored = make_connection(provider, clock.now())
    await bulk_import(database, [stored])
    again = make_connection(provider, clock.now())
    again.id = stored.id
    batch = [make_connection(provider, clock.now()) for _ in range(3)] + [again]

    with pytest.raises(DuplicateError, match="nothing was imported"):
        await bulk_import(database, batch)

    assert await stored_count(database) == 1
    assert {connection.version for connection in batch} == {0}


async def test_bulk_import_many_rows_in_one_call(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connections = [
        make_connection(provider, clock.now(), user_id=uuid.uuid4())
        for _ in range(2_500)
    ]

    imported = await bulk_import(database, connections)

    assert imported == 2_500
    assert await stored_count(database) == 2_500
