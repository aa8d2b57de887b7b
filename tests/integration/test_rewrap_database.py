"""Key rotation over real tables: rewrap and verify on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from factories import make_connection, make_provider
from linkvault.adapters.clock import FakeClock
from linkvault.adapters.crypto import EncryptionKey, Keyring, generate_key
from linkvault.adapters.sqlalchemy.connection_repository import (
    SqlAlchemyConnectionRepository,
)
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.encrypted_columns import encrypted_columns
from linkvault.adapters.sqlalchemy.provider_repository import (
    SqlAlchemyProviderRepository,
)
from linkvault.application.rewrap import RewrapProgress, rewrap, verify
from linkvault.domain import DecryptionError, ProviderCredentials, TokenSet
from linkvault.ports.cipher import connection_context, provider_context

ROWS = 120


OLD_KEY = EncryptionKey("old", generate_key())
NEW_KEY = EncryptionKey("new", generate_key())


@pytest.fixture
def keyring() -> Keyring:
    return Keyring([OLD_KEY, NEW_KEY], primary="old")


async def store_rows(database: Database, clock: FakeClock, keyring: Keyring) -> None:
    provider = make_provider("sandbox")
    provider.client_secret_encrypted = keyring.encrypt(
        b"client-secret", provider_context(provider.id)
    )
    async with database.session() as session:
        await SqlAlchemyProviderRepository(session, clock).save(provider)
        repository = SqlAlchemyConnectionRepository(session, clock)
        for index in range(ROWS):
            connection = make_connection(provider, clock.now())
            tokens = TokenSet(access_token=f"access-{index}", refresh_token="r")
            blob = keyring.encrypt(
                tokens.to_json(),
                connection_context(connection.id, connection.user_id),
            )
            assert connection.credentials is not None
            connection.replace_credentials(
                ProviderCredentials(blob, connection.credentials.credential_type),
                clock.now(),
            )
            await repository.save(connection)


class RewrapInterruptedError(Exception):
    pass


def stop_after_first_batch(progress: RewrapProgress) -> None:
    raise RewrapInterruptedError(progress.rows_done)


async def test_rewrap_moves_every_row(
    database: Database, clock: FakeClock, keyring: Keyring
) -> None:
    await store_rows(database, clock, keyring)
    rotated = keyring.with_primary("new")

    report = await rewrap(rotated, encrypted_columns(database), batch_size=50)
    check = await verify(rotated, encrypted_columns(database))

    assert sum(c.rewrapped for c in report.columns) == ROWS + 1
    assert check.ok
    assert all(c.non_primary == 0 for c in check.columns)
    new_only = Keyring([NEW_KEY], primary="new")
    assert (await verify(new_only, encrypted_columns(database))).ok


async def test_interrupted_rewrap_completes_next_run(
    database: Database, clock: FakeClock, keyring: Keyring
) -> None:
    await store_rows(database, clock, keyring)
    rotated = keyring.with_primary("new")

    with pytest.raises(RewrapInterruptedError):
        await rewrap(
            rotated,
            encrypted_columns(database),
            batch_size=50,
            on_progress=stop_after_first_batch,
        )
    halfway = await verify(rotated, encrypted_columns(database))
    second = await rewrap(rotated, encrypted_columns(database), batch_size=50)
    done = await verify(rotated, encrypted_columns(database))

    connections = halfway.columns[0]
    assert connections.primary == 50
    assert connections.non_primary == ROWS - 50
    assert second.columns[0].already_primary == 50
    assert second.columns[0].rewrapped == ROWS - 50
    assert done.ok


async def test_rewrap_keeps_versions(
    database: Database, clock: FakeClock, keyring: Keyring
) -> None:
    await store_rows(database, clock, keyring)
    async with database.session() as session:
        before = await SqlAlchemyConnectionRepository(session).list_connections()

    await rewrap(keyring.with_primary("new"), encrypted_columns(database))

    async with database.session() as session:
        after = await SqlAlchemyConnectionRepository(session).list_connections()
    assert [c.version for c in after] == [c.version for c in before]


async def test_blob_copied_to_other_row_fails(
    database: Database, clock: FakeClock, keyring: Keyring
) -> None:
    await store_rows(database, clock, keyring)
    async with database.session() as session:
        first, second = await SqlAlchemyConnectionRepository(session).list_connections(
            limit=2
        )

    assert first.credentials is not None
    with pytest.raises(DecryptionError):
        keyring.decrypt(
            first.credentials.encrypted_data,
            connection_context(second.id, second.user_id),
        )
