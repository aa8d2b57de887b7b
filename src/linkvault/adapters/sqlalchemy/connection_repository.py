"""The connection repository over an `AsyncSession`, for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from linkvault.adapters.clock import SystemClock
from linkvault.adapters.sqlalchemy.errors import SqlConnectionNotFoundError
from linkvault.adapters.sqlalchemy.mapping import connection_to_row, row_to_connection
from linkvault.adapters.sqlalchemy.tables import (
    ACTIVE_PREDICATE,
    provider_connections,
)
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.errors import (
    DuplicateError,
    PersistenceError,
    StaleConnectionError,
)
from linkvault.domain.status import ConnectionStatus
from linkvault.ports.clock import Clock

_T = provider_connections
_ACTIVE = sa.text(ACTIVE_PREDICATE)
_LEASE_COLUMNS = {"lease_owner", "lease_expires_at"}
_SELECTED = [column for column in _T.c if column.name not in _LEASE_COLUMNS]


def expiring_soon_statement(horizon: datetime, limit: int) -> sa.Select[Any]:
    """Build the `find_expiring_soon` query; tests EXPLAIN this exact statement."""
    return (
        sa.select(*_SELECTED)
        .where(_ACTIVE, _T.c.credentials_expires_at <= horizon)
        .order_by(_T.c.credentials_expires_at, _T.c.id)
        .limit(limit)
    )


class SqlAlchemyConnectionRepository:
    """Connections stored in `provider_connections`.

    Never commits: the session scope that owns `session` does. Every write runs
    immediately, so constraint errors surface at the call.
    """

    def __init__(self, session: AsyncSession, clock: Clock | None = None) -> None:
        self._session = session
        self._clock = clock or SystemClock()

    async def find_by_id(self, connection_id: UUID) -> ProviderConnection | None:
        statement = sa.select(*_SELECTED).where(_T.c.id == connection_id)
        row = (await self._session.execute(statement)).mappings().one_or_none()
        return None if row is None else row_to_connection(row)

    async def find_by_user_id(
        self, user_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        """Return every connection of a user, ordered by `created_at`, then id."""
        return await self._list(_T.c.user_id == user_id, limit=limit)

    async def find_by_user_and_provider(
        self, user_id: UUID, provider_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        """Return a user's connections to one provider, by `created_at`, then id."""
        condition = sa.and_(_T.c.user_id == user_id, _T.c.provider_id == provider_id)
        return await self._list(condition, limit=limit)

    async def find_active_by_user(
        self, user_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        """Return a user's active connections, by `created_at`, then id."""
        condition = sa.and_(_T.c.user_id == user_id, _ACTIVE)
        return await self._list(condition, limit=limit)

    async def save(self, connection: ProviderConnection) -> None:
        """Insert or update with the version check; see the port for the contract."""
        connection.check_invariants()
        values = connection_to_row(connection)
        with self._translate_errors(connection):
            if connection.version == 0:
                stored = await self._insert(values)
            else:
                stored = await self._update(values, connection.version)

        if stored is None:
            raise StaleConnectionError(connection.id, connection.version)
        connection.version = stored

    async def delete(self, connection_id: UUID) -> None:
        """Delete the row for good; raises `SqlConnectionNotFoundError` if absent."""
        statement = sa.delete(_T).where(_T.c.id == connection_id).returning(_T.c.id)
        deleted = (await self._session.execute(statement)).scalar_one_or_none()
        if deleted is None:
            raise SqlConnectionNotFoundError(connection_id)

    async def find_expiring_soon(
        self, minutes: int = 30, *, limit: int = 1000
    ) -> list[ProviderConnection]:
        """Return active connections whose credentials expire within `minutes`.

        Already expired credentials are included; connections without an
        expiry are not. Ordered by expiry (most urgent first), then id. The
        status is a literal so the partial index on active rows applies.
        """
        horizon = self._clock.now() + timedelta(minutes=minutes)
        statement = expiring_soon_statement(horizon, limit)
        rows = (await self._session.execute(statement)).mappings()
        return [row_to_connection(row) for row in rows]

    async def list_connections(
        self,
        *,
        user_id: UUID | None = None,
        provider_id: UUID | None = None,
        status: ConnectionStatus | None = None,
        limit: int | None = None,
        after_id: UUID | None = None,
    ) -> list[ProviderConnection]:
        """Return connections matching every given filter, ordered by id."""
        conditions = []
        if user_id is not None:
            conditions.append(_T.c.user_id == user_id)
        if provider_id is not None:
            conditions.append(_T.c.provider_id == provider_id)
        if status is not None:
            conditions.append(_T.c.status == status.value)
        if after_id is not None:
            conditions.append(_T.c.id > after_id)

        statement = (
            sa.select(*_SELECTED).where(*conditions).order_by(_T.c.id).limit(limit)
        )
        rows = (await self._session.execute(statement)).mappings()
        return [row_to_connection(row) for row in rows]

    async def count_by_status(self) -> dict[ConnectionStatus, int]:
        statement = sa.select(_T.c.status, sa.func.count()).group_by(_T.c.status)
        counts = dict.fromkeys(ConnectionStatus, 0)
        for status, count in await self._session.execute(statement):
            counts[ConnectionStatus(status)] = count
        return counts

    async def _list(
        self, condition: sa.ColumnElement[bool], *, limit: int | None
    ) -> list[ProviderConnection]:
        statement = (
            sa.select(*_SELECTED)
            .where(condition)
            .order_by(_T.c.created_at, _T.c.id)
            .limit(limit)
        )
        rows = (await self._session.execute(statement)).mappings()
        return [row_to_connection(row) for row in rows]

    async def _insert(self, values: dict[str, Any]) -> int | None:
        # ON CONFLICT DO NOTHING keeps the transaction usable when the id is
        # already taken; the missing RETURNING row then means "stale".
        insert = (
            postgresql.insert(_T)
            if self._session.get_bind().dialect.name == "postgresql"
            else sqlite.insert(_T)
        )
        statement = (
            insert.values(**values, version=1)
            .on_conflict_do_nothing(index_elements=[_T.c.id])
            .returning(_T.c.version)
        )
        version: int | None = (await self._session.execute(statement)).scalar()
        return version

    async def _update(self, values: dict[str, Any], version: int) -> int | None:
        changes = {k: v for k, v in values.items() if k not in ("id", "created_at")}
        statement = (
            sa.update(_T)
            .where(_T.c.id == values["id"], _T.c.version == version)
            .values(**changes, version=_T.c.version + 1)
            .returning(_T.c.version)
        )
        new_version: int | None = (await self._session.execute(statement)).scalar()
        return new_version

    @contextmanager
    def _translate_errors(self, connection: ProviderConnection) -> Iterator[None]:
        try:
            yield
        except exc.IntegrityError as error:
            detail = _first_line(error.orig)
            if "foreign key" in detail.lower():
                raise PersistenceError(
                    f"Connection {connection.id} refers to provider "
                    f"{connection.provider_id}, which does not exist; add the "
                    "provider before connecting to it."
                ) from error
            if "unique" in detail.lower() or "duplicate" in detail.lower():
                raise DuplicateError(
                    f"Connection {connection.id} conflicts with a stored row "
                    f"({detail})."
                ) from error
            raise PersistenceError(
                f"The database rejected connection {connection.id}: {detail}. "
                "The entity breaks a table constraint; fix its fields."
            ) from error


def _first_line(error: BaseException | None) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "no detail"
