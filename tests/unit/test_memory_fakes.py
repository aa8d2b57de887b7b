"""In-memory fakes, the id factory and the clocks, against their port contracts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from linkvault.adapters.clock import FakeClock, SystemClock
from linkvault.adapters.memory import (
    InMemoryConnectionRepository,
    InMemoryProviderRepository,
)
from linkvault.domain import (
    ConnectionNotFoundError,
    ConnectionStatus,
    CredentialType,
    DuplicateError,
    InvalidConnectionError,
    PersistenceError,
    Provider,
    ProviderConnection,
    ProviderCredentials,
    StaleConnectionError,
)
from linkvault.ids import new_id

Status = ConnectionStatus

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
USER = UUID("00000000-0000-7000-8000-00000000000a")
OTHER_USER = UUID("00000000-0000-7000-8000-00000000000b")
PROVIDER = UUID("00000000-0000-7000-8000-0000000000c1")
OTHER_PROVIDER = UUID("00000000-0000-7000-8000-0000000000c2")


def make_connection(
    *,
    id: UUID | None = None,
    user_id: UUID = USER,
    provider_id: UUID = PROVIDER,
    status: ConnectionStatus = Status.ACTIVE,
    created_at: datetime = NOW,
    expires_at: datetime | None = None,
    blob: bytes = b"blob-v1",
) -> ProviderConnection:
    """Build a connection for the repository tests.

    Every status but pending and disconnected gets credentials that expire at
    `expires_at`.
    """
    credentials = None
    if status not in (Status.PENDING, Status.DISCONNECTED):
        credentials = ProviderCredentials(blob, CredentialType.OAUTH2, expires_at)
    return ProviderConnection(
        id=id or new_id(),
        user_id=user_id,
        provider_id=provider_id,
        provider_slug="schwab",
        created_at=created_at,
        updated_at=created_at,
        status=status,
        credentials=credentials,
    )


def make_provider(slug: str, *, id: UUID | None = None, name: str = "P") -> Provider:
    return Provider(
        id=id or new_id(),
        slug=slug,
        name=name,
        credential_type=CredentialType.API_KEY,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def repository(clock: FakeClock) -> InMemoryConnectionRepository:
    return InMemoryConnectionRepository(clock)


async def save_all(
    repository: InMemoryConnectionRepository, *connections: ProviderConnection
) -> None:
    for connection in connections:
        await repository.save(connection)


def ids_of(connections: list[ProviderConnection]) -> list[UUID]:
    return [connection.id for connection in connections]


async def test_save_then_find_by_id(
    repository: InMemoryConnectionRepository,
) -> None:
    connection = make_connection(expires_at=NOW + timedelta(hours=1))
    await repository.save(connection)

    found = await repository.find_by_id(connection.id)

    assert found is not None
    assert found is not connection
    assert found.id == connection.id
    assert found.status is Status.ACTIVE
    assert found.credentials == connection.credentials
    assert found.created_at == NOW


async def test_find_unknown_id_returns_none(
    repository: InMemoryConnectionRepository,
) -> None:
    assert await repository.find_by_id(uuid4()) is None


async def test_insert_stores_version_one(
    repository: InMemoryConnectionRepository,
) -> None:
    connection = make_connection()

    await repository.save(connection)

    found = await repository.find_by_id(connection.id)
    assert connection.version == 1
    assert found is not None
    assert found.version == 1


async def test_update_bumps_version(
    repository: InMemoryConnectionRepository,
) -> None:
    connection = make_connection()
    await repository.save(connection)

    connection.alias = "brokerage"
    await repository.save(connection)

    found = await repository.find_by_id(connection.id)
    assert connection.version == 2
    assert found is not None
    assert found.version == 2
    assert found.alias == "brokerage"


async def test_saved_copy_not_shared(
    repository: InMemoryConnectionRepository,
) -> None:
    connection = make_connection()
    await repository.save(connection)

    connection.alias = "changed after save"
    found = await repository.find_by_id(connection.id)
    assert found is not None
    found.alias = "changed after find"

    again = await repository.find_by_id(connection.id)
    assert again is not None
    assert again.alias is None


async def test_stale_copy_rejected(
    repository: InMemoryConnectionRepository,
) -> None:
    await repository.save(make_connection(id=UUID(int=1)))
    fresh = await repository.find_by_id(UUID(int=1))
    stale = await repository.find_by_id(UUID(int=1))
    assert fresh is not None
    assert stale is not None
    rotated = ProviderCredentials(b"blob-rotated", CredentialType.OAUTH2)
    fresh.replace_credentials(rotated, NOW)
    await repository.save(fresh)

    stale.replace_credentials(
        ProviderCredentials(b"blob-old", CredentialType.OAUTH2), NOW
    )
    with pytest.raises(StaleConnectionError) as caught:
        await repository.save(stale)

    stored = await repository.find_by_id(UUID(int=1))
    assert stored is not None
    assert stored.credentials == rotated
    assert stored.version == 2
    assert stale.version == 1
    assert caught.value.connection_id == UUID(int=1)
    assert caught.value.version == 1


async def test_new_copy_of_stored_id_rejected(
    repository: InMemoryConnectionRepository,
) -> None:
    await repository.save(make_connection(id=UUID(int=1)))

    with pytest.raises(StaleConnectionError):
        await repository.save(make_connection(id=UUID(int=1), blob=b"blob-other"))


async def test_save_rejects_broken_invariant(
    repository: InMemoryConnectionRepository,
) -> None:
    connection = make_connection(status=Status.PENDING)
    connection.status = Status.ACTIVE

    with pytest.raises(InvalidConnectionError):
        await repository.save(connection)

    assert await repository.find_by_id(connection.id) is None


async def test_delete_removes_connection(
    repository: InMemoryConnectionRepository,
) -> None:
    connection = make_connection()
    await repository.save(connection)

    await repository.delete(connection.id)

    assert await repository.find_by_id(connection.id) is None


async def test_second_delete_raises_not_found(
    repository: InMemoryConnectionRepository,
) -> None:
    connection = make_connection()
    await repository.save(connection)
    await repository.delete(connection.id)

    with pytest.raises(ConnectionNotFoundError) as caught:
        await repository.delete(connection.id)

    assert caught.value.connection_id == connection.id
    assert str(connection.id) in str(caught.value)
    assert isinstance(caught.value, PersistenceError)


async def test_find_by_user_includes_every_status(
    repository: InMemoryConnectionRepository,
) -> None:
    mine = [make_connection(status=status) for status in Status]
    theirs = make_connection(user_id=OTHER_USER)
    await save_all(repository, *mine, theirs)

    found = await repository.find_by_user_id(USER)

    assert {c.status for c in found} == set(Status)
    assert set(ids_of(found)) == set(ids_of(mine))


async def test_find_by_user_and_provider_filters(
    repository: InMemoryConnectionRepository,
) -> None:
    first = make_connection()
    second = make_connection()
    other_provider = make_connection(provider_id=OTHER_PROVIDER)
    other_user = make_connection(user_id=OTHER_USER)
    await save_all(repository, first, second, other_provider, other_user)

    found = await repository.find_by_user_and_provider(USER, PROVIDER)

    assert set(ids_of(found)) == {first.id, second.id}


async def test_find_active_by_user_filters(
    repository: InMemoryConnectionRepository,
) -> None:
    active = make_connection()
    others = [make_connection(status=s) for s in Status if s is not Status.ACTIVE]
    other_user = make_connection(user_id=OTHER_USER)
    await save_all(repository, active, *others, other_user)

    found = await repository.find_active_by_user(USER)

    assert ids_of(found) == [active.id]


UserQuery = Callable[
    [InMemoryConnectionRepository, int | None], Awaitable[list[ProviderConnection]]
]

USER_QUERIES: dict[str, UserQuery] = {
    "find_by_user_id": lambda r, limit: r.find_by_user_id(USER, limit=limit),
    "find_by_user_and_provider": lambda r, limit: r.find_by_user_and_provider(
        USER, PROVIDER, limit=limit
    ),
    "find_active_by_user": lambda r, limit: r.find_active_by_user(USER, limit=limit),
}


@pytest.mark.parametrize("query", list(USER_QUERIES))
async def test_user_lists_order_by_creation(
    repository: InMemoryConnectionRepository, query: str
) -> None:
    # The largest id is the oldest, so sorting by id alone would fail. The
    # three ties on created_at must come back in id order.
    oldest = make_connection(id=UUID(int=9), created_at=NOW - timedelta(days=1))
    tie_b = make_connection(id=UUID(int=2))
    tie_a = make_connection(id=UUID(int=1))
    tie_c = make_connection(id=UUID(int=3))
    await save_all(repository, tie_b, tie_c, oldest, tie_a)

    found = await USER_QUERIES[query](repository, None)

    assert ids_of(found) == [UUID(int=9), UUID(int=1), UUID(int=2), UUID(int=3)]


@pytest.mark.parametrize("query", list(USER_QUERIES))
async def test_user_lists_honour_limit(
    repository: InMemoryConnectionRepository, query: str
) -> None:
    await save_all(repository, *(make_connection(id=UUID(int=n)) for n in (3, 1, 2)))

    found = await USER_QUERIES[query](repository, 2)

    assert ids_of(found) == [UUID(int=1), UUID(int=2)]


async def test_expiring_soon_uses_window(
    repository: InMemoryConnectionRepository,
) -> None:
    soon = make_connection(expires_at=NOW + timedelta(minutes=10))
    later = make_connection(expires_at=NOW + timedelta(minutes=45))
    await save_all(repository, soon, later)

    default_window = await repository.find_expiring_soon()
    hour_window = await repository.find_expiring_soon(minutes=60)

    assert ids_of(default_window) == [soon.id]
    assert ids_of(hour_window) == [soon.id, later.id]


async def test_expiring_soon_includes_already_expired(
    repository: InMemoryConnectionRepository,
) -> None:
    expired = make_connection(expires_at=NOW - timedelta(hours=3))
    await repository.save(expired)

    found = await repository.find_expiring_soon(minutes=5)

    assert ids_of(found) == [expired.id]


async def test_expiring_soon_skips_no_expiry(
    repository: InMemoryConnectionRepository,
) -> None:
    await repository.save(make_connection(expires_at=None))

    assert await repository.find_expiring_soon(minutes=60 * 24 * 365) == []


@pytest.mark.parametrize(
    "status", [s for s in Status if s is not Status.ACTIVE], ids=str
)
async def test_expiring_soon_only_active(
    repository: InMemoryConnectionRepository, status: ConnectionStatus
) -> None:
    await repository.save(
        make_connection(status=status, expires_at=NOW + timedelta(minutes=1))
    )

    assert await repository.find_expiring_soon() == []


async def test_expiring_soon_most_urgent_first(
    repository: InMemoryConnectionRepository,
) -> None:
    expiry = NOW + timedelta(minutes=20)
    await save_all(
        repository,
        make_connection(id=UUID(int=1), expires_at=NOW + timedelta(minutes=25)),
        make_connection(id=UUID(int=5), expires_at=expiry),
        make_connection(id=UUID(int=4), expires_at=expiry),
        make_connection(id=UUID(int=9), expires_at=NOW - timedelta(minutes=1)),
    )

    found = await repository.find_expiring_soon()

    assert ids_of(found) == [UUID(int=9), UUID(int=4), UUID(int=5), UUID(int=1)]


async def test_expiring_soon_honours_limit(
    repository: InMemoryConnectionRepository,
) -> None:
    await save_all(
        repository,
        *(
            make_connection(id=UUID(int=n), expires_at=NOW + timedelta(minutes=n))
            for n in (3, 1, 2)
        ),
    )

    found = await repository.find_expiring_soon(limit=2)

    assert ids_of(found) == [UUID(int=1), UUID(int=2)]


async def test_expiring_soon_default_limit(
    repository: InMemoryConnectionRepository,
) -> None:
    await save_all(repository, *(make_connection(expires_at=NOW) for _ in range(1001)))

    found = await repository.find_expiring_soon()

    assert len(found) == 1000


async def test_expiring_soon_follows_clock(
    repository: InMemoryConnectionRepository, clock: FakeClock
) -> None:
    connection = make_connection(expires_at=NOW + timedelta(minutes=45))
    await repository.save(connection)

    clock.advance(timedelta(minutes=20))

    assert ids_of(await repository.find_expiring_soon()) == [connection.id]


async def test_count_by_status_includes_zero(
    repository: InMemoryConnectionRepository,
) -> None:
    await save_all(
        repository,
        make_connection(),
        make_connection(),
        make_connection(status=Status.PENDING),
    )

    counts = await repository.count_by_status()

    assert counts == {
        Status.PENDING: 1,
        Status.ACTIVE: 2,
        Status.EXPIRED: 0,
        Status.REVOKED: 0,
        Status.FAILED: 0,
        Status.DISCONNECTED: 0,
    }


async def test_count_by_status_when_empty(
    repository: InMemoryConnectionRepository,
) -> None:
    counts = await repository.count_by_status()

    assert counts == dict.fromkeys(Status, 0)


async def test_list_connections_pages_by_id(
    repository: InMemoryConnectionRepository,
) -> None:
    await save_all(
        repository,
        *(make_connection(id=UUID(int=n)) for n in (4, 2, 3, 1)),
        make_connection(id=UUID(int=5), status=Status.PENDING),
        make_connection(id=UUID(int=6), user_id=OTHER_USER),
    )

    first_page = await repository.list_connections(
        user_id=USER, status=Status.ACTIVE, limit=2
    )
    second_page = await repository.list_connections(
        user_id=USER, status=Status.ACTIVE, limit=2, after_id=first_page[-1].id
    )

    assert ids_of(first_page) == [UUID(int=1), UUID(int=2)]
    assert ids_of(second_page) == [UUID(int=3), UUID(int=4)]


async def test_provider_save_and_find() -> None:
    providers = InMemoryProviderRepository()
    provider = make_provider("alpaca")

    await providers.save(provider)

    by_id = await providers.get(provider.id)
    by_slug = await providers.get_by_slug("alpaca")
    assert by_id is not None
    assert by_id.slug == "alpaca"
    assert by_slug is not None
    assert by_slug.id == provider.id
    assert await providers.get(uuid4()) is None
    assert await providers.get_by_slug("unknown") is None


async def test_provider_duplicate_slug_rejected() -> None:
    providers = InMemoryProviderRepository()
    original = make_provider("schwab", name="Original")
    await providers.save(original)

    with pytest.raises(DuplicateError, match="schwab"):
        await providers.save(make_provider("schwab", name="Impostor"))

    stored = await providers.get_by_slug("schwab")
    assert stored is not None
    assert stored.id == original.id
    assert stored.name == "Original"


async def test_provider_update_keeps_slug() -> None:
    providers = InMemoryProviderRepository()
    provider = make_provider("schwab", name="Before")
    await providers.save(provider)

    provider.name = "After"
    await providers.save(provider)

    stored = await providers.get(provider.id)
    assert stored is not None
    assert stored.name == "After"
    assert len(await providers.list()) == 1


async def test_provider_list_orders_by_slug() -> None:
    providers = InMemoryProviderRepository()
    for slug in ("schwab", "alpaca", "plaid"):
        await providers.save(make_provider(slug))

    listed = await providers.list()

    assert [p.slug for p in listed] == ["alpaca", "plaid", "schwab"]


def test_new_id_is_uuid_version_7() -> None:
    value = new_id()

    assert type(value) is uuid.UUID
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_new_id_embeds_current_time() -> None:
    before_ms = int(time.time() * 1000)
    value = new_id()
    after_ms = int(time.time() * 1000)

    # A UUIDv7 stores Unix time in milliseconds in its top 48 bits.
    embedded_ms = value.int >> 80
    assert before_ms <= embedded_ms
    assert embedded_ms <= after_ms


def test_new_id_values_increase() -> None:
    values = [new_id() for _ in range(5000)]

    assert values == sorted(values)
    assert len(set(values)) == len(values)


def test_fake_clock_default_start() -> None:
    clock = FakeClock()

    assert clock.now() == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_fake_clock_now_is_stable() -> None:
    clock = FakeClock(NOW)

    assert clock.now() == NOW
    assert clock.now() == NOW


def test_fake_clock_advance_moves_now() -> None:
    clock = FakeClock(NOW)

    returned = clock.advance(timedelta(minutes=90))

    assert returned == NOW + timedelta(minutes=90)
    assert clock.now() == NOW + timedelta(minutes=90)


def test_fake_clock_set_moves_now() -> None:
    clock = FakeClock(NOW)
    target = NOW - timedelta(days=1)

    clock.set(target)

    assert clock.now() == target


def test_fake_clock_converts_to_utc() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))

    assert clock.now() == NOW
    assert clock.now().tzinfo is UTC


def test_fake_clock_rejects_naive_start() -> None:
    with pytest.raises(ValueError, match="start"):
        FakeClock(datetime(2026, 1, 1, 12, 0))


def test_fake_clock_rejects_naive_set() -> None:
    clock = FakeClock(NOW)

    with pytest.raises(ValueError, match="value"):
        clock.set(datetime(2026, 1, 1, 12, 0))

    assert clock.now() == NOW


def test_system_clock_returns_utc() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)

    assert now.tzinfo is UTC
    assert before <= now
    assert now <= after
