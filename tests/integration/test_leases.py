"""Claiming and releasing refresh leases on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from factories import make_connection, make_provider
from linkvault.adapters.clock import FakeClock
from linkvault.adapters.sqlalchemy.connection_repository import (
    SqlAlchemyConnectionRepository,
)
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.leases import SqlAlchemyLeaseRepository
from linkvault.adapters.sqlalchemy.provider_repository import (
    SqlAlchemyProviderRepository,
)
from linkvault.domain import ConnectionStatus, Provider, ProviderConnection

LEASE = timedelta(seconds=60)


@pytest.fixture
async def provider(database: Database, clock: FakeClock) -> Provider:
    provider = make_provider("sandbox")
    async with database.session() as session:
        await SqlAlchemyProviderRepository(session, clock).save(provider)
    return provider


async def store(
    database: Database,
    clock: FakeClock,
    provider: Provider,
    due_in: list[int],
    status: ConnectionStatus = ConnectionStatus.ACTIVE,
) -> list[ProviderConnection]:
    connections = []
    async with database.session() as session:
        repository = SqlAlchemyConnectionRepository(session, clock)
        for minutes in due_in:
            connection = make_connection(provider, clock.now(), status=status)
            if status is ConnectionStatus.ACTIVE:
                connection.next_refresh_at = clock.now() + timedelta(minutes=minutes)
            await repository.save(connection)
            connections.append(connection)
    return connections


async def claim(
    database: Database, clock: FakeClock, owner: str, limit: int = 100
) -> list[ProviderConnection]:
    async with database.session() as session:
        return await SqlAlchemyLeaseRepository(session).claim_due(
            owner=owner, now=clock.now(), lease_for=LEASE, limit=limit
        )


async def test_claim_due_most_urgent_first(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    stored = await store(database, clock, provider, [-1, -30, 5, -10])

    claimed = await claim(database, clock, "worker-a")

    due = [stored[1], stored[3], stored[0]]
    assert [c.id for c in claimed] == [c.id for c in due]


async def test_claim_respects_limit(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    stored = await store(database, clock, provider, [-3, -2, -1])

    claimed = await claim(database, clock, "worker-a", limit=2)

    assert [c.id for c in claimed] == [stored[0].id, stored[1].id]


async def test_claim_skips_leased_and_inactive(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    await store(database, clock, provider, [-5, -5])
    await store(database, clock, provider, [0], status=ConnectionStatus.EXPIRED)

    first = await claim(database, clock, "worker-a")
    second = await claim(database, clock, "worker-b")

    assert len(first) == 2
    assert second == []


async def test_expired_lease_is_reclaimed(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    await store(database, clock, provider, [-5])
    await claim(database, clock, "worker-dead")

    clock.advance(LEASE + timedelta(seconds=1))
    taken_over = await claim(database, clock, "worker-b")

    assert len(taken_over) == 1
    async with database.session() as session:
        owner, expires = await SqlAlchemyLeaseRepository(session).lease_of(
            taken_over[0].id
        )
    assert owner == "worker-b"
    assert expires == clock.now() + LEASE


async def test_paused_provider_not_claimed(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    await store(database, clock, provider, [-5])
    provider.paused_at = clock.now()
    provider.paused_reason = "invalid_client"
    async with database.session() as session:
        await SqlAlchemyProviderRepository(session, clock).save(provider)

    assert await claim(database, clock, "worker-a") == []


async def test_release_makes_claimable(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    stored = await store(database, clock, provider, [-5, -4])
    await claim(database, clock, "worker-a")

    async with database.session() as session:
        leases = SqlAlchemyLeaseRepository(session)
        released_other = await leases.release(stored[0].id, "worker-b")
        released_own = await leases.release(stored[0].id, "worker-a")
        released_rest = await leases.release_all("worker-a")
    again = await claim(database, clock, "worker-b")

    assert released_other is False
    assert released_own is True
    assert released_rest == 1
    assert len(again) == 2


async def test_claim_one_honours_live_lease(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    (connection,) = await store(database, clock, provider, [30])

    async with database.session() as session:
        leases = SqlAlchemyLeaseRepository(session)
        mine = await leases.claim(
            connection.id, owner="api-1", now=clock.now(), lease_for=LEASE
        )
        theirs = await leases.claim(
            connection.id, owner="api-2", now=clock.now(), lease_for=LEASE
        )
        renewed = await leases.claim(
            connection.id, owner="api-1", now=clock.now(), lease_for=LEASE
        )

    assert mine is not None
    assert theirs is None
    assert renewed is not None


async def test_save_leaves_lease_alone(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    (connection,) = await store(database, clock, provider, [-5])
    (claimed,) = await claim(database, clock, "worker-a")

    claimed.alias = "renamed while leased"
    async with database.session() as session:
        await SqlAlchemyConnectionRepository(session, clock).save(claimed)
        owner, _ = await SqlAlchemyLeaseRepository(session).lease_of(connection.id)

    assert owner == "worker-a"


async def test_concurrent_claimers_disjoint(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    stored = await store(database, clock, provider, [-1] * 40)

    batches = await asyncio.gather(
        *(claim(database, clock, f"worker-{i}", limit=15) for i in range(4))
    )

    claimed = [c.id for batch in batches for c in batch]
    assert len(claimed) == len(set(claimed))
    assert set(claimed) == {c.id for c in stored}


async def lease_owner(database: Database, connection_id: uuid.UUID) -> str | None:
    async with database.session(readonly=True) as session:
        owner, _ = await SqlAlchemyLeaseRepository(session).lease_of(connection_id)
    return owner


async def test_store_and_release_skips_stale(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    await store(database, clock, provider, [-3, -2, -1])
    first, second, third = await claim(database, clock, "worker-a")
    async with database.session() as session:
        repository = SqlAlchemyConnectionRepository(session, clock)
        edited = await repository.find_by_id(second.id)
        assert edited is not None
        edited.alias = "edited elsewhere"
        await repository.save(edited)
    for connection in (first, second, third):
        connection.alias = "refreshed"

    async with database.session() as session:
        stored = await SqlAlchemyLeaseRepository(session).store_and_release(
            [first, second, third], "worker-a"
        )

    assert stored == [True, False, True]
    assert await lease_owner(database, first.id) is None
    assert await lease_owner(database, second.id) == "worker-a"
    assert await lease_owner(database, third.id) is None
    assert (first.version, third.version) == (2, 2)


async def test_store_and_release_keeps_other_lease(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    await store(database, clock, provider, [-1])
    (claimed,) = await claim(database, clock, "worker-b")
    claimed.alias = "saved by worker-a"

    async with database.session() as session:
        stored = await SqlAlchemyLeaseRepository(session).store_and_release(
            [claimed], "worker-a"
        )

    assert stored == [True]
    assert await lease_owner(database, claimed.id) == "worker-b"
