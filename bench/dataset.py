"""Synthetic connections for the benchmarks, loaded with `bulk_import`.

The mix: N connections over N/5 users (users drawn uniformly, so a user has
about five), 80% active, 10% expired, 5% pending, 5% disconnected, across ten
providers. Active credentials expire uniformly over the next seven days, except
a 5% backlog whose access tokens expired up to two hours ago; each active row
has `next_refresh_at` 30 minutes (plus up to a minute of jitter) before its
expiry.

Every credentials blob is a real token set encrypted by a real keyring under
its own row's associated data, so every blob decrypts for its row. Generating
and encrypting 100,000 rows takes about 3 seconds on the machine described in
BENCHMARKS.md, which is why no blobs are reused.

The data depends only on the seed and `now`; the keyring is new in each run.
"""

# Seeded pseudo-random numbers make the data reproducible; the tokens are fake.
# ruff: noqa: S311

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from linkvault.adapters.crypto.keyring import EncryptionKey, Keyring
from linkvault.adapters.sqlalchemy.bulk import bulk_import
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.provider_repository import (
    SqlAlchemyProviderRepository,
)
from linkvault.domain import (
    ConnectionStatus,
    CredentialType,
    Provider,
    ProviderConnection,
    ProviderCredentials,
    TokenSet,
)
from linkvault.ports.cipher import connection_context

DEFAULT_SEED = 20260301
CONNECTIONS_PER_USER = 5

# Cumulative shares of the statuses, drawn with one random number per row.
STATUS_SHARES = (
    (0.80, ConnectionStatus.ACTIVE),
    (0.90, ConnectionStatus.EXPIRED),
    (0.95, ConnectionStatus.PENDING),
    (1.00, ConnectionStatus.DISCONNECTED),
)
PAST_DUE_SHARE = 0.05
PAST_DUE_SPAN = timedelta(hours=2)
EXPIRY_SPREAD = timedelta(days=7)
REFRESH_MARGIN = timedelta(minutes=30)
REFRESH_JITTER = timedelta(minutes=1)
HISTORY = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class TokenShape:
    """Token lengths of one kind of provider, in characters."""

    name: str
    access_length: int
    refresh_length: int
    scopes: tuple[str, ...]


# Opaque tokens of 40 and 48 characters and JWT access tokens of about 1 KB
# are common shapes. The "typical" one serialises to about 320 bytes of JSON.
OPAQUE = TokenShape("opaque", 40, 40, ("read",))
TYPICAL = TokenShape("typical", 48, 48, ("read", "trade"))
JWT = TokenShape("jwt", 1100, 100, ("openid", "profile", "offline_access"))
# Six "typical" providers, two "opaque", two "jwt".
PROVIDER_SHAPES = (TYPICAL,) * 6 + (OPAQUE,) * 2 + (JWT,) * 2


@dataclass(frozen=True, slots=True)
class RowKey:
    """The keys of one stored row, for picking benchmark inputs."""

    id: UUID
    user_id: UUID
    provider_id: UUID
    status: ConnectionStatus


def make_keyring() -> Keyring:
    """Return a keyring with one fresh key, as a deployment starts out."""
    key = EncryptionKey.generate("bench-key-1")
    return Keyring([key], primary=key.key_id)


def make_providers(seed: int = DEFAULT_SEED) -> tuple[Provider, ...]:
    rng = random.Random(seed)
    return tuple(
        Provider(
            id=UUID(int=rng.getrandbits(128), version=4),
            slug=f"bench-{index:02d}-{shape.name}",
            name=f"Benchmark provider {index}",
            credential_type=CredentialType.OAUTH2,
            authorization_url="http://127.0.0.1:9/authorize",
            token_url="http://127.0.0.1:9/token",
            client_id=f"bench-client-{index}",
            scopes=shape.scopes,
        )
        for index, shape in enumerate(PROVIDER_SHAPES)
    )


class ConnectionFactory:
    """Builds connections from one seeded random stream.

    Args:
        now: The benchmark's fixed "now"; expiries are spread around it.
        keyring: Encrypts every token set.
        providers: The providers to spread connections over, in
            `PROVIDER_SHAPES` order.
        user_count: How many distinct users the connections belong to.
        seed: Seed of the random stream.
    """

    def __init__(
        self,
        *,
        now: datetime,
        keyring: Keyring,
        providers: tuple[Provider, ...],
        user_count: int,
        seed: int = DEFAULT_SEED,
    ) -> None:
        self._now = now
        self._keyring = keyring
        self._providers = providers
        self._rng = random.Random(seed)
        self._users = [self._uuid4() for _ in range(max(1, user_count))]

    def connection(
        self, status: ConnectionStatus | None = None, *, new_user: bool = False
    ) -> ProviderConnection:
        """Return one new (version 0) connection; the status is drawn if None."""
        rng = self._rng
        status = status or _draw_status(rng.random())
        provider_index = rng.randrange(len(self._providers))
        provider = self._providers[provider_index]
        created_at = self._now - HISTORY * rng.random()
        user_id = self._uuid4() if new_user else rng.choice(self._users)
        connection = ProviderConnection(
            id=self._uuid7(created_at),
            user_id=user_id,
            provider_id=provider.id,
            provider_slug=provider.slug,
            created_at=created_at,
            updated_at=created_at,
            alias=f"Account {rng.randrange(1, 10)}" if rng.random() < 0.3 else None,
        )
        self._fill(connection, status, PROVIDER_SHAPES[provider_index])
        return connection

    def chunks(self, count: int, chunk_size: int) -> Iterator[list[ProviderConnection]]:
        """Yield `count` connections with drawn statuses, `chunk_size` at a time."""
        for start in range(0, count, chunk_size):
            size = min(chunk_size, count - start)
            yield [self.connection() for _ in range(size)]

    def rotated_credentials(
        self, connection: ProviderConnection
    ) -> ProviderCredentials:
        """Return new credentials for `connection`, as a refresh would store."""
        expires_at = self._now + timedelta(hours=1)
        shape = self._shape_of(connection)
        return self._credentials(connection, shape, expires_at)

    def _fill(
        self,
        connection: ProviderConnection,
        status: ConnectionStatus,
        shape: TokenShape,
    ) -> None:
        rng = self._rng
        connection.status = status
        if status is ConnectionStatus.PENDING:
            return

        connection.connected_at = connection.authorized_at = connection.created_at
        if status is ConnectionStatus.DISCONNECTED:
            connection.status_reason = "disconnected by the user"
            return

        if status is ConnectionStatus.EXPIRED:
            expires_at = self._now - PAST_DUE_SPAN - timedelta(days=30) * rng.random()
            connection.status_reason = "invalid_grant"
        elif rng.random() < PAST_DUE_SHARE:
            expires_at = self._now - PAST_DUE_SPAN * rng.random()
        else:
            expires_at = self._now + EXPIRY_SPREAD * rng.random()
        connection.credentials = self._credentials(connection, shape, expires_at)
        if status is ConnectionStatus.ACTIVE:
            jitter = REFRESH_JITTER * rng.random()
            connection.next_refresh_at = expires_at - REFRESH_MARGIN - jitter
            connection.refresh_token_expires_at = expires_at + timedelta(days=7)
            connection.last_refresh_at = max(
                connection.created_at, expires_at - timedelta(hours=1)
            )
            connection.last_sync_at = connection.last_refresh_at
            connection.updated_at = connection.last_refresh_at

    def _credentials(
        self, connection: ProviderConnection, shape: TokenShape, expires_at: datetime
    ) -> ProviderCredentials:
        tokens = TokenSet(
            access_token=self._token(shape.access_length),
            refresh_token=self._token(shape.refresh_length),
            expires_at=expires_at,
            refresh_token_expires_at=expires_at + timedelta(days=7),
            scopes=shape.scopes,
        )
        context = connection_context(connection.id, connection.user_id)
        return ProviderCredentials(
            encrypted_data=self._keyring.encrypt(tokens.to_json(), context),
            credential_type=CredentialType.OAUTH2,
            expires_at=expires_at,
        )

    def _shape_of(self, connection: ProviderConnection) -> TokenShape:
        for provider, shape in zip(self._providers, PROVIDER_SHAPES, strict=True):
            if provider.id == connection.provider_id:
                return shape
        return TYPICAL

    def _token(self, length: int) -> str:
        raw = self._rng.randbytes(length)
        return base64.urlsafe_b64encode(raw).decode("ascii")[:length]

    def _uuid4(self) -> UUID:
        return UUID(int=self._rng.getrandbits(128), version=4)

    def _uuid7(self, at: datetime) -> UUID:
        # RFC 9562 section 5.7: 48-bit Unix milliseconds, version, 74 random
        # bits. Built here from the seeded stream so the data is reproducible.
        milliseconds = int(at.timestamp() * 1000) & ((1 << 48) - 1)
        value = (milliseconds << 80) | (0x7 << 76)
        value |= self._rng.getrandbits(12) << 64
        value |= (0b10 << 62) | self._rng.getrandbits(62)
        return UUID(int=value)


def _draw_status(draw: float) -> ConnectionStatus:
    for threshold, status in STATUS_SHARES:
        if draw < threshold:
            return status
    return STATUS_SHARES[-1][1]


async def save_providers(database: Database, providers: tuple[Provider, ...]) -> None:
    async with database.session() as session:
        repository = SqlAlchemyProviderRepository(session)
        for provider in providers:
            await repository.save(provider)


async def load(
    database: Database,
    factory: ConnectionFactory,
    *,
    size: int,
    sample_size: int,
    chunk_size: int = 20_000,
) -> tuple[RowKey, ...]:
    """Bulk-import `size` connections; return the keys of a random sample of them."""
    picker = random.Random(size)
    picked = set(picker.sample(range(size), min(sample_size, size)))
    sample = []
    index = 0
    for chunk in factory.chunks(size, chunk_size):
        await bulk_import(database, chunk)
        for connection in chunk:
            if index in picked:
                sample.append(_key_of(connection))
            index += 1

    picker.shuffle(sample)
    return tuple(sample)


def _key_of(connection: ProviderConnection) -> RowKey:
    return RowKey(
        connection.id,
        connection.user_id,
        connection.provider_id,
        connection.status,
    )
