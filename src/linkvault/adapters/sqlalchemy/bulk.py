"""Bulk import of new connections through each driver's fast path.

On PostgreSQL the rows go through binary COPY (asyncpg's
`copy_records_to_table`) on the connection of an ordinary session scope, so the
import commits or rolls back as one transaction. On SQLite they go through one
`executemany` in one write transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection

from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.mapping import ENTITY_COLUMN_NAMES
from linkvault.adapters.sqlalchemy.tables import provider_connections, providers
from linkvault.adapters.sqlalchemy.types import UTCDateTime
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.errors import (
    DatabaseUnavailableError,
    DuplicateError,
    InvalidConnectionError,
    NaiveDatetimeError,
    PersistenceError,
    ProviderNotFoundError,
)

# Bound parameters per provider lookup. SQLite accepts at most 32,766 per
# statement (999 before version 3.32), so long lists are split.
_LOOKUP_CHUNK = 500

# The columns a new row fills, in the order of `_record`: the entity's columns,
# in the order `connection_from_values` reads them. The lease columns stay empty.
_COLUMNS = ENTITY_COLUMN_NAMES
_TIME_POSITIONS = tuple(
    position
    for position, name in enumerate(_COLUMNS)
    if isinstance(provider_connections.c[name].type, UTCDateTime)
)


async def bulk_import(
    database: Database, connections: Sequence[ProviderConnection]
) -> int:
    """Insert new connections in one transaction, far faster than `save` per row.

    Every connection must be new (version 0) and keep its invariants. Each row
    is stored with version 1, which is written back to the entity after the
    commit, as `save` does. Lease columns stay empty.

    Returns:
        The number of connections inserted.

    Raises:
        InvalidConnectionError: A connection breaks an invariant, was saved
            before, or shares its id with another one in `connections`.
        NaiveDatetimeError: A connection has a datetime without a time zone.
        ProviderNotFoundError: A connection refers to a provider that is not
            stored.
        DuplicateError: A connection's id is already stored.
        PersistenceError: The database rejected a row for another reason.

    Nothing is stored when any of these is raised.
    """
    records = _checked_records(connections)
    if not records:
        return 0

    async with database.session() as session:
        connection = await session.connection()
        await _check_providers(connection, {c.provider_id for c in connections})
        with _translate_errors(len(records)):
            if database.dialect_name == "postgresql":
                await _copy(connection, records)
            else:
                rows = [dict(zip(_COLUMNS, record, strict=True)) for record in records]
                await connection.execute(sa.insert(provider_connections), rows)

    for imported in connections:
        imported.version = 1
    return len(records)


def _checked_records(
    connections: Sequence[ProviderConnection],
) -> list[tuple[Any, ...]]:
    seen: set[UUID] = set()
    records = []
    for connection in connections:
        connection.check_invariants()
        if connection.version != 0:
            raise InvalidConnectionError(
                f"Connection {connection.id} was already saved (version "
                f"{connection.version}); bulk import takes only new connections, "
                "so save changes to stored ones with the repository."
            )
        if connection.id in seen:
            raise InvalidConnectionError(
                f"Connection id {connection.id} appears twice in the import; "
                "give every connection its own id."
            )
        seen.add(connection.id)

        record = _record(connection)
        _check_times(record)
        records.append(record)
    return records


def _record(connection: ProviderConnection) -> tuple[Any, ...]:
    """Return the row of a new connection in `_COLUMNS` order.

    The same values as `connection_to_row` plus version 1, built as a tuple
    without that dictionary, because preparing the rows is a large share of
    the import's own time.
    """
    credentials = connection.credentials
    blob = kind = expires_at = None
    if credentials is not None:
        blob = credentials.encrypted_data
        kind = credentials.credential_type.value
        expires_at = credentials.expires_at
    return (
        connection.id,
        connection.user_id,
        connection.provider_id,
        connection.provider_slug,
        connection.status.value,
        connection.alias,
        blob,
        kind,
        expires_at,
        connection.refresh_token_expires_at,
        connection.connected_at,
        connection.authorized_at,
        connection.last_sync_at,
        connection.next_refresh_at,
        connection.refresh_failures,
        connection.last_refresh_at,
        connection.last_refresh_error,
        connection.status_reason,
        1,
        connection.created_at,
        connection.updated_at,
    )


def _check_times(record: tuple[Any, ...]) -> None:
    # COPY bypasses the column types, so this repeats their naive-value check.
    # Entities hold UTC values, so the `UTC` test settles almost every value.
    for position in _TIME_POSITIONS:
        value = record[position]
        if value is None or value.tzinfo is UTC:
            continue
        if value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"Connection {record[0]} has {_COLUMNS[position]}="
                f"{value.isoformat()} without a time zone; pass an aware datetime "
                "such as datetime.now(UTC)."
            )


async def _check_providers(
    connection: AsyncConnection, provider_ids: set[UUID]
) -> None:
    wanted = sorted(provider_ids)
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start : start + _LOOKUP_CHUNK]
        statement = sa.select(providers.c.id).where(providers.c.id.in_(chunk))
        found = set((await connection.execute(statement)).scalars())
        missing = [provider_id for provider_id in chunk if provider_id not in found]
        if missing:
            raise ProviderNotFoundError(missing[0])


async def _copy(connection: AsyncConnection, records: list[tuple[Any, ...]]) -> None:
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    # SQLAlchemy's asyncpg adapter opens the transaction at the first statement
    # (the provider check); COPY must run inside it to roll back with the scope.
    if not driver.is_in_transaction():
        raise PersistenceError(
            "Bulk import found no open transaction on its PostgreSQL connection, "
            "so COPY could not be rolled back; this is a bug in linkvault."
        )

    await driver.copy_records_to_table(
        provider_connections.name, records=records, columns=list(_COLUMNS)
    )


@contextmanager
def _translate_errors(count: int) -> Iterator[None]:
    try:
        yield
    except (exc.IntegrityError, asyncpg.IntegrityConstraintViolationError) as error:
        raise _rejected(count, error) from error
    except asyncpg.PostgresError as error:
        raise PersistenceError(
            f"PostgreSQL rejected the bulk import of {count} connections "
            f"({type(error).__name__}: {_first_line(error)}); nothing was imported."
        ) from error
    except asyncpg.InterfaceError as error:
        raise DatabaseUnavailableError(
            f"The PostgreSQL connection failed during the bulk import of {count} "
            f"connections ({type(error).__name__}: {_first_line(error)}); nothing "
            "was imported. Check that the server is running, then retry."
        ) from error


def _rejected(count: int, error: Exception) -> PersistenceError:
    cause = getattr(error, "orig", None) or error
    detail = _first_line(cause)
    lowered = detail.lower()
    if "unique" in lowered or "duplicate" in lowered:
        # asyncpg puts the conflicting key in `detail`; the message holds only
        # the constraint. Row values are not quoted, as they include blobs.
        key = getattr(cause, "detail", None)
        return DuplicateError(
            f"The bulk import of {count} connections conflicts with a stored row "
            f"({detail}{'; ' + key if key else ''}); nothing was imported. Import "
            "only connections that are not stored yet."
        )
    return PersistenceError(
        f"The database rejected the bulk import of {count} connections "
        f"({detail}); nothing was imported. A connection breaks a table "
        "constraint; fix its fields."
    )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "no detail"
