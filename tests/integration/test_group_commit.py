"""Group commit of refresh results on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from factories import make_connection, make_credentials, make_provider
from linkvault.adapters.clock import FakeClock
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.application.group_commit import GroupCommit, Saved
from linkvault.bootstrap import Services, UnitOfWork
from linkvault.config import Settings
from linkvault.domain import (
    ConnectionEvent,
    EventType,
    Provider,
    ProviderConnection,
)
from linkvault.ids import new_id

OWNER = "group-worker"
LEASE = timedelta(seconds=60)


class CountingUnitOfWork:
    """Opens the services' real transactions, counts them, can fail the next few."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self.opened = 0
        self.fail_next = 0

    @asynccontextmanager
    async def __call__(self, *, readonly: bool = False) -> AsyncIterator[UnitOfWork]:
        self.opened += 1
        async with self._services.unit_of_work(readonly=readonly) as work:
            yield work
            if self.fail_next:
                self.fail_next -= 1
                raise RuntimeError("the commit failed")


@pytest.fixture
def unit_of_work(
    database: Database, clock: FakeClock, tmp_path: Path
) -> CountingUnitOfWork:
    settings = Settings(database_url="sqlite://", base_dir=tmp_path)
    return CountingUnitOfWork(Services(settings, database, clock))


@pytest.fixture
async def provider(unit_of_work: CountingUnitOfWork) -> Provider:
    provider = make_provider("sandbox")
    async with unit_of_work() as work:
        await work.providers.save(provider)
    return provider


async def claimed(
    unit_of_work: CountingUnitOfWork, clock: FakeClock, provider: Provider, count: int
) -> list[ProviderConnection]:
    """Store `count` due connections and lease them to `OWNER`."""
    async with unit_of_work() as work:
        for _ in range(count):
            connection = make_connection(provider, clock.now())
            connection.next_refresh_at = clock.now()
            await work.connections.save(connection)
    async with unit_of_work() as work:
        return await work.leases.claim_due(
            owner=OWNER, now=clock.now(), lease_for=LEASE, limit=count
        )


def rotate(
    clock: FakeClock,
) -> Callable[[ProviderConnection], ConnectionEvent | None]:
    def change(connection: ProviderConnection) -> ConnectionEvent | None:
        expires_at = clock.now() + timedelta(hours=2)
        connection.replace_credentials(
            make_credentials(expires_at, data=b"rotated"),
            clock.now(),
            next_refresh_at=expires_at,
        )
        return ConnectionEvent.record(
            id=new_id(),
            connection=connection,
            event_type=EventType.REFRESHED,
            occurred_at=clock.now(),
            status_before="active",
            actor="refresh",
        )

    return change


def leave_alone(connection: ProviderConnection) -> ConnectionEvent | None:
    return None


async def stored_state(
    unit_of_work: CountingUnitOfWork, connection: ProviderConnection
) -> tuple[bytes | None, str | None, list[EventType]]:
    """Return the stored blob, the lease owner and the event types of a row."""
    async with unit_of_work(readonly=True) as work:
        row = await work.connections.find_by_id(connection.id)
        owner, _ = await work.leases.lease_of(connection.id)
        events = await work.events.list_for_connection(connection.id)
    assert row is not None
    blob = None if row.credentials is None else row.credentials.encrypted_data
    return blob, owner, [event.event_type for event in events]


async def test_concurrent_saves_share_transactions(
    unit_of_work: CountingUnitOfWork, clock: FakeClock, provider: Provider
) -> None:
    connections = await claimed(unit_of_work, clock, provider, 30)
    group = GroupCommit(unit_of_work, OWNER)
    before = unit_of_work.opened

    results = await asyncio.gather(
        *(group.save(connection, rotate(clock)) for connection in connections)
    )

    assert results == [Saved.STORED] * 30
    assert unit_of_work.opened - before <= 2
    for connection in connections:
        blob, owner, events = await stored_state(unit_of_work, connection)
        assert blob == b"rotated"
        assert owner is None
        assert events == [EventType.REFRESHED]


async def test_group_size_is_capped(
    unit_of_work: CountingUnitOfWork, clock: FakeClock, provider: Provider
) -> None:
    connections = await claimed(unit_of_work, clock, provider, 10)
    group = GroupCommit(unit_of_work, OWNER, max_group=3)
    before = unit_of_work.opened

    results = await asyncio.gather(
        *(group.save(connection, rotate(clock)) for connection in connections)
    )

    assert results == [Saved.STORED] * 10
    # All ten wait for the committer, which takes them three at a time.
    assert unit_of_work.opened - before == 4


async def test_stale_member_retries_alone(
    unit_of_work: CountingUnitOfWork, clock: FakeClock, provider: Provider
) -> None:
    first, second, third = await claimed(unit_of_work, clock, provider, 3)
    async with unit_of_work() as work:
        edited = await work.connections.find_by_id(second.id)
        assert edited is not None
        edited.alias = "renamed meanwhile"
        await work.connections.save(edited)
    group = GroupCommit(unit_of_work, OWNER)

    results = await asyncio.gather(
        *(group.save(c, rotate(clock)) for c in (first, second, third))
    )

    assert results == [Saved.STORED, Saved.RETRY, Saved.STORED]
    blob, owner, events = await stored_state(unit_of_work, second)
    assert blob == b"ciphertext-placeholder"
    assert owner == OWNER
    assert events == []
    assert (await stored_state(unit_of_work, third))[0] == b"rotated"


async def test_unchanged_member_releases_lease(
    unit_of_work: CountingUnitOfWork, clock: FakeClock, provider: Provider
) -> None:
    (connection,) = await claimed(unit_of_work, clock, provider, 1)
    group = GroupCommit(unit_of_work, OWNER)

    result = await group.save(connection, leave_alone)

    blob, owner, events = await stored_state(unit_of_work, connection)
    assert result is Saved.UNCHANGED
    assert blob == b"ciphertext-placeholder"
    assert owner is None
    assert events == []


async def test_failed_transaction_writes_nothing(
    unit_of_work: CountingUnitOfWork, clock: FakeClock, provider: Provider
) -> None:
    connections = await claimed(unit_of_work, clock, provider, 2)
    group = GroupCommit(unit_of_work, OWNER)
    unit_of_work.fail_next = 1

    results = await asyncio.gather(
        *(group.save(connection, rotate(clock)) for connection in connections)
    )

    assert results == [Saved.RETRY, Saved.RETRY]
    blob, owner, events = await stored_state(unit_of_work, connections[0])
    assert blob == b"ciphertext-placeholder"
    assert owner == OWNER
    assert events == []
