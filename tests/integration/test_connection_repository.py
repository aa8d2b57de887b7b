"""The SQLAlchemy connection repository, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, timedelta

import pytest
from sqlalchemy.exc import NoResultFound

from factories import make_connection, make_credentials, make_provider
from linkvault.adapters.clock import FakeClock
from linkvault.adapters.sqlalchemy.connection_repository import (
    SqlAlchemyConnectionRepository,
)
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.mapping import ENTITY_COLUMN_NAMES
from linkvault.adapters.sqlalchemy.provider_repository import (
    SqlAlchemyProviderRepository,
)
from linkvault.domain import (
    ConnectionNotFoundError,
    ConnectionStatus,
    CredentialType,
    PersistenceError,
    Provider,
    ProviderConnection,
    StaleConnectionError,
)


@pytest.fixture
async def provider(database: Database, clock: FakeClock) -> Provider:
    provider = make_provider("sandbox")
    async with database.session() as session:
        await SqlAlchemyProviderRepository(session, clock).save(provider)
    return provider


async def save_all(
    database: Database, clock: FakeClock, *connections: ProviderConnection
) -> None:
    async with database.session() as session:
        repository = SqlAlchemyConnectionRepository(session, clock)
        for connection in connections:
            await repository.save(connection)


async def find(
    database: Database, clock: FakeClock, connection_id: uuid.UUID
) -> ProviderConnection | None:
    async with database.session(readonly=True) as session:
        return await SqlAlchemyConnectionRepository(session, clock).find_by_id(
            connection_id
        )


async def test_save_then_find_by_id(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now(), alias="Main brokerage")
    await save_all(database, clock, connection)

    found = await find(database, clock, connection.id)

    assert found is not None
    assert found.id == connection.id
    assert found.user_id == connection.user_id
    assert found.provider_id == provider.id
    assert found.provider_slug == "sandbox"
    assert found.status is ConnectionStatus.ACTIVE
    assert found.alias == "Main brokerage"
    assert found.credentials == connection.credentials
    assert found.connected_at == clock.now()
    assert found.authorized_at == clock.now()
    assert found.created_at == connection.created_at
    assert found.version == 1


async def test_find_unknown_id_returns_none(
    database: Database, clock: FakeClock
) -> None:
    assert await find(database, clock, uuid.uuid4()) is None


async def test_find_by_user_returns_every_status(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    user = uuid.uuid4()
    mine = [
        make_connection(provider, clock.now(), user_id=user, status=status)
        for status in ConnectionStatus
    ]
    other = make_connection(provider, clock.now(), user_id=uuid.uuid4())
    await save_all(database, clock, *mine, other)

    async with database.session(readonly=True) as session:
        found = await SqlAlchemyConnectionRepository(session).find_by_user_id(user)

    assert {c.id for c in found} == {c.id for c in mine}
    assert {c.status for c in found} == set(ConnectionStatus)
    assert other.id not in {c.id for c in found}


async def test_find_by_user_orders_and_limits(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    user = uuid.uuid4()
    start = clock.now()
    later = make_connection(
        provider, start, user_id=user, created_at=start + timedelta(minutes=5)
    )
    earlier = make_connection(provider, start, user_id=user, created_at=start)
    await save_all(database, clock, later, earlier)

    async with database.session(readonly=True) as session:
        repository = SqlAlchemyConnectionRepository(session)
        ordered = await repository.find_by_user_id(user)
        limited = await repository.find_by_user_id(user, limit=1)

    assert [c.id for c in ordered] == [earlier.id, later.id]
    assert [c.id for c in limited] == [earlier.id]


async def test_same_provider_twice_returns_both(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    user = uuid.uuid4()
    first = make_connection(provider, clock.now(), user_id=user, alias="IRA")
    second = make_connection(provider, clock.now(), user_id=user, alias="Taxable")
    other_provider = make_provider("other")
    async with database.session() as session:
        await SqlAlchemyProviderRepository(session).save(other_provider)
    elsewhere = make_connection(other_provider, clock.now(), user_id=user)
    await save_all(database, clock, first, second, elsewhere)

    async with database.session(readonly=True) as session:
        found = await SqlAlchemyConnectionRepository(session).find_by_user_and_provider(
            user, provider.id
        )

    assert sorted(c.id for c in found) == sorted([first.id, second.id])


async def test_find_active_returns_only_active(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    user = uuid.uuid4()
    connections = [
        make_connection(provider, clock.now(), user_id=user, status=status)
        for status in ConnectionStatus
    ]
    await save_all(database, clock, *connections)

    async with database.session(readonly=True) as session:
        found = await SqlAlchemyConnectionRepository(session).find_active_by_user(user)

    assert len(found) == 1
    assert found[0].status is ConnectionStatus.ACTIVE


async def expiring(
    database: Database, clock: FakeClock, minutes: int | None = None
) -> list[uuid.UUID]:
    async with database.session(readonly=True) as session:
        repository = SqlAlchemyConnectionRepository(session, clock)
        if minutes is None:
            found = await repository.find_expiring_soon()
        else:
            found = await repository.find_expiring_soon(minutes=minutes)
    return [c.id for c in found]


async def test_expiring_soon_window_at_default(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    soon = make_connection(provider, clock.now(), expires_in=timedelta(minutes=15))
    later = make_connection(provider, clock.now(), expires_in=timedelta(hours=2))
    await save_all(database, clock, soon, later)

    found = await expiring(database, clock)

    assert soon.id in found
    assert later.id not in found


async def test_expiring_soon_excludes_inactive_and_no_expiry(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    fifteen = timedelta(minutes=15)
    excluded = [
        make_connection(provider, clock.now(), status=status, expires_in=fifteen)
        for status in (
            ConnectionStatus.EXPIRED,
            ConnectionStatus.REVOKED,
            ConnectionStatus.DISCONNECTED,
            ConnectionStatus.PENDING,
            ConnectionStatus.FAILED,
        )
    ]
    no_expiry = make_connection(provider, clock.now(), expires_in=None)
    await save_all(database, clock, *excluded, no_expiry)

    found = await expiring(database, clock)

    assert found == []


async def test_expiring_soon_includes_already_expired(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    past = make_connection(provider, clock.now(), expires_in=timedelta(hours=-1))
    await save_all(database, clock, past)

    assert await expiring(database, clock) == [past.id]


async def test_expiring_soon_respects_minutes(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(
        provider, clock.now(), expires_in=timedelta(minutes=45)
    )
    await save_all(database, clock, connection)

    assert await expiring(database, clock, minutes=30) == []
    assert await expiring(database, clock, minutes=60) == [connection.id]


async def test_expiring_soon_most_urgent_first(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    offsets = [20, -60, 5, 0, 29]
    connections = [
        make_connection(provider, clock.now(), expires_in=timedelta(minutes=m))
        for m in offsets
    ]
    await save_all(database, clock, *connections)

    found = await expiring(database, clock)

    by_offset = sorted(zip(offsets, connections, strict=True), key=lambda p: p[0])
    assert found == [c.id for _, c in by_offset]


async def test_expiring_soon_ties_broken_by_id_and_limited(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    same = timedelta(minutes=10)
    connections = [
        make_connection(provider, clock.now(), expires_in=same) for _ in range(4)
    ]
    await save_all(database, clock, *connections)

    async with database.session(readonly=True) as session:
        found = await SqlAlchemyConnectionRepository(session, clock).find_expiring_soon(
            limit=3
        )

    assert [c.id for c in found] == sorted(c.id for c in connections)[:3]


async def test_delete_removes_row_then_raises(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())
    await save_all(database, clock, connection)

    async with database.session() as session:
        await SqlAlchemyConnectionRepository(session).delete(connection.id)

    assert await find(database, clock, connection.id) is None
    with pytest.raises(ConnectionNotFoundError):
        async with database.session() as session:
            await SqlAlchemyConnectionRepository(session).delete(connection.id)


async def test_delete_missing_is_no_result_found(
    database: Database, clock: FakeClock
) -> None:
    missing = uuid.uuid4()

    with pytest.raises(NoResultFound) as caught:
        async with database.session() as session:
            await SqlAlchemyConnectionRepository(session).delete(missing)

    assert isinstance(caught.value, ConnectionNotFoundError)
    assert str(missing) in str(caught.value)


async def test_update_keeps_id_and_changes_fields(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())
    await save_all(database, clock, connection)

    loaded = await find(database, clock, connection.id)
    assert loaded is not None
    clock.advance(timedelta(minutes=50))
    new_expiry = clock.now() + timedelta(hours=1)
    loaded.replace_credentials(
        make_credentials(new_expiry, data=b"rotated-blob"),
        clock.now(),
        next_refresh_at=new_expiry - timedelta(minutes=10),
    )
    loaded.alias = "Renamed"
    await save_all(database, clock, loaded)

    updated = await find(database, clock, connection.id)
    assert updated is not None
    assert updated.id == connection.id
    assert updated.alias == "Renamed"
    assert updated.credentials is not None
    assert updated.credentials.encrypted_data == b"rotated-blob"
    assert updated.credentials.expires_at == new_expiry
    assert updated.next_refresh_at == new_expiry - timedelta(minutes=10)
    assert updated.last_refresh_at == clock.now()
    assert updated.version == 2
    assert loaded.version == 2


async def test_stale_copy_rejected_keeps_newer(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())
    await save_all(database, clock, connection)
    worker_copy = await find(database, clock, connection.id)
    stale_copy = await find(database, clock, connection.id)
    assert worker_copy is not None
    assert stale_copy is not None

    worker_copy.replace_credentials(
        make_credentials(clock.now() + timedelta(hours=1), data=b"rotated"),
        clock.now(),
    )
    await save_all(database, clock, worker_copy)
    stale_copy.alias = "edited from an old copy"
    with pytest.raises(StaleConnectionError):
        await save_all(database, clock, stale_copy)

    stored = await find(database, clock, connection.id)
    assert stored is not None
    assert stored.credentials is not None
    assert stored.credentials.encrypted_data == b"rotated"
    assert stored.alias is None
    assert stored.version == 2


async def test_new_entity_with_taken_id_is_stale(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())
    await save_all(database, clock, connection)
    duplicate = make_connection(provider, clock.now())
    duplicate.id = connection.id

    with pytest.raises(StaleConnectionError):
        await save_all(database, clock, duplicate)

    stored = await find(database, clock, connection.id)
    assert stored is not None
    assert stored.user_id == connection.user_id


async def test_concurrent_saves_one_wins(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())
    await save_all(database, clock, connection)
    copies = [await find(database, clock, connection.id) for _ in range(5)]

    async def save_copy(index: int, copy: ProviderConnection | None) -> bool:
        assert copy is not None
        copy.alias = f"writer {index}"
        try:
            await save_all(database, clock, copy)
        except StaleConnectionError:
            return False
        return True

    results = await asyncio.gather(*(save_copy(i, c) for i, c in enumerate(copies)))

    assert results.count(True) == 1
    stored = await find(database, clock, connection.id)
    assert stored is not None
    assert stored.version == 2


@pytest.mark.parametrize("credential_type", list(CredentialType))
async def test_every_credential_type_round_trips(
    database: Database,
    clock: FakeClock,
    provider: Provider,
    credential_type: CredentialType,
) -> None:
    connection = make_connection(provider, clock.now())
    expires = None if not credential_type.expires else clock.now()
    credentials = make_credentials(expires, credential_type, data=b"\x00\xffblob")
    connection.replace_credentials(credentials, clock.now())
    await save_all(database, clock, connection)

    found = await find(database, clock, connection.id)

    assert found is not None
    assert found.credentials == credentials
    assert found.credentials.credential_type is credential_type


async def test_credentials_none_stored_as_null(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now(), status=ConnectionStatus.PENDING)
    await save_all(database, clock, connection)

    async with database.session(readonly=True) as session:
        from sqlalchemy import select

        from linkvault.adapters.sqlalchemy.tables import provider_connections as t

        row = (
            await session.execute(
                select(t.c.credentials, t.c.credential_type).where(
                    t.c.id == connection.id
                )
            )
        ).one()

    assert row.credentials is None
    assert row.credential_type is None
    found = await find(database, clock, connection.id)
    assert found is not None
    assert found.credentials is None


async def test_disconnect_clears_stored_credentials(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())
    await save_all(database, clock, connection)
    connection.disconnect(clock.now(), "user request")
    await save_all(database, clock, connection)

    found = await find(database, clock, connection.id)

    assert found is not None
    assert found.status is ConnectionStatus.DISCONNECTED
    assert found.credentials is None


async def test_unknown_provider_rejected_clearly(
    database: Database, clock: FakeClock
) -> None:
    orphan = make_connection(make_provider("ghost"), clock.now())

    with pytest.raises(PersistenceError, match="add the provider"):
        await save_all(database, clock, orphan)


async def test_list_connections_filters(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    user = uuid.uuid4()
    active = make_connection(provider, clock.now(), user_id=user)
    expired = make_connection(
        provider, clock.now(), user_id=user, status=ConnectionStatus.EXPIRED
    )
    other = make_connection(provider, clock.now())
    await save_all(database, clock, active, expired, other)

    async with database.session(readonly=True) as session:
        repository = SqlAlchemyConnectionRepository(session)
        by_user = await repository.list_connections(user_id=user)
        by_status = await repository.list_connections(status=ConnectionStatus.EXPIRED)
        by_provider = await repository.list_connections(provider_id=provider.id)
        counts = await repository.count_by_status()

    assert [c.id for c in by_user] == sorted([active.id, expired.id])
    assert [c.id for c in by_status] == [expired.id]
    assert len(by_provider) == 3
    assert counts[ConnectionStatus.ACTIVE] == 2
    assert counts[ConnectionStatus.EXPIRED] == 1
    assert counts[ConnectionStatus.REVOKED] == 0


async def test_session_rolls_back_on_error(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())

    async def save_then_fail() -> None:
        async with database.session() as session:
            await SqlAlchemyConnectionRepository(session).save(connection)
            raise RuntimeError("abort the scope")

    with pytest.raises(RuntimeError):
        await save_then_fail()

    assert await find(database, clock, connection.id) is None


async def test_datetimes_read_back_utc(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())
    await save_all(database, clock, connection)

    found = await find(database, clock, connection.id)

    assert found is not None
    assert found.credentials is not None
    for value in (
        found.created_at,
        found.updated_at,
        found.connected_at,
        found.credentials.expires_at,
    ):
        assert value is not None
        assert value.tzinfo is UTC


async def test_save_many_stores_current_and_skips_stale(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    first, second, third = (make_connection(provider, clock.now()) for _ in range(3))
    await save_all(database, clock, first, second, third)
    edited = await find(database, clock, second.id)
    assert edited is not None
    edited.alias = "edited elsewhere"
    await save_all(database, clock, edited)
    for connection in (first, second, third):
        connection.alias = "renamed together"

    async with database.session() as session:
        repository = SqlAlchemyConnectionRepository(session, clock)
        stored = await repository.save_many([first, second, third])

    assert stored == [True, False, True]
    assert (first.version, second.version, third.version) == (2, 1, 2)
    for connection, alias in ((first, "renamed together"), (third, "renamed together")):
        found = await find(database, clock, connection.id)
        assert found is not None
        assert found.alias == alias
        assert found.version == 2
    unchanged = await find(database, clock, second.id)
    assert unchanged is not None
    assert unchanged.alias == "edited elsewhere"


async def test_save_many_rejects_new_connection(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())

    async with database.session() as session:
        repository = SqlAlchemyConnectionRepository(session, clock)
        with pytest.raises(ValueError, match="version 0"):
            await repository.save_many([connection])


async def test_save_many_keeps_every_column(
    database: Database, clock: FakeClock, provider: Provider
) -> None:
    connection = make_connection(provider, clock.now())
    await save_all(database, clock, connection)
    clock.advance(timedelta(minutes=5))
    connection.record_refresh_failure(clock.now(), "server_error", clock.now())
    connection.alias = "all columns"

    async with database.session() as session:
        repository = SqlAlchemyConnectionRepository(session, clock)
        assert await repository.save_many([connection]) == [True]

    found = await find(database, clock, connection.id)
    assert found is not None
    for name in ENTITY_COLUMN_NAMES:
        if name not in ("credentials", "credential_type", "credentials_expires_at"):
            assert getattr(found, name) == getattr(connection, name), name
    assert found.credentials == connection.credentials
