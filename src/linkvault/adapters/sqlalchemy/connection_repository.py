"""The connection repository over an `AsyncSession`, for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
from linkvault.adapters.sqlalchemy.mapping import (
    connection_from_values,
    connection_to_row,
    entities,
)
from linkvault.adapters.sqlalchemy.tables import (
    ACTIVE_PREDICATE,
    ENTITY_COLUMNS,
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
_SELECT = sa.select(*ENTITY_COLUMNS)

# The hot statements are built once with bound parameters. SQLAlchemy then
# computes each one's cache key a single time instead of rebuilding the
# statement and its key on every call, which cost about a fifth of a point
# read (bench/, PostgreSQL, before and after in BENCHMARKS.md).
_BY_ID = _SELECT.where(_T.c.id == sa.bindparam("id"))
_OF_USER = _SELECT.where(_T.c.user_id == sa.bindparam("user_id"))
_BY_USER = _OF_USER.order_by(_T.c.created_at, _T.c.id)
_BY_USER_AND_PROVIDER = _OF_USER.where(
    _T.c.provider_id == sa.bindparam("provider_id")
).order_by(_T.c.created_at, _T.c.id)
_ACTIVE_BY_USER = _OF_USER.where(_ACTIVE).order_by(_T.c.created_at, _T.c.id)
_EXPIRING_SOON = (
    _SELECT.where(_ACTIVE, _T.c.credentials_expires_at <= sa.bindparam("horizon"))
    .order_by(_T.c.credentials_expires_at, _T.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
# Updates bind the row's id and expected version under names of their own,
# because a bound parameter may not share its name with a column it sets.
_UPDATE = (
    sa.update(_T)
    .where(
        _T.c.id == sa.bindparam("match_id"),
        _T.c.version == sa.bindparam("match_version"),
    )
    .values(version=_T.c.version + 1)
    .returning(_T.c.version)
)
_INSERTS = {
    name: insert(_T)
    .on_conflict_do_nothing(index_elements=[_T.c.id])
    .returning(_T.c.version)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_NOT_UPDATED = ("id", "created_at")


# The columns a group UPDATE sets, besides bumping the version.
_UPDATE_MANY_COLUMNS = [
    c.name for c in ENTITY_COLUMNS if c.name not in (*_NOT_UPDATED, "version")
]


def _update_many_statement(*, release: bool) -> sa.TextualSelect:
    """Build the PostgreSQL UPDATE of many rows from one array per column.

    Each row carries its id and expected version, and RETURNING names the rows
    that matched, so a stale row is detected without failing the others. With
    `release`, the same statement drops the lease of `:lease_holder`.
    """
    names = _UPDATE_MANY_COLUMNS
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    columns = [("match_id", _T.c.id.type), ("match_version", _T.c.version.type)]
    columns += [(name, _T.c[name].type) for name in names]
    arrays = ", ".join(
        f"CAST(:{name} AS {kind.compile(dialect=dialect)}[])" for name, kind in columns
    )
    assignments = ", ".join(f"{name} = v.{name}" for name in names)
    if release:
        holder_matches = "t.lease_owner = :lease_holder"
        assignments += (
            f", lease_owner = CASE WHEN {holder_matches} THEN NULL "
            "ELSE t.lease_owner END"
            f", lease_expires_at = CASE WHEN {holder_matches} THEN NULL "
            "ELSE t.lease_expires_at END"
        )
    # Every name comes from the table definition, none from a caller.
    sql = (
        f"UPDATE {_T.name} AS t SET {assignments}, version = t.version + 1 "  # noqa: S608
        f"FROM unnest({arrays}) AS v({', '.join(name for name, _ in columns)}) "
        "WHERE t.id = v.match_id AND t.version = v.match_version "
        "RETURNING t.id, t.version"
    )
    parameters = [
        sa.bindparam(name, type_=postgresql.ARRAY(kind)) for name, kind in columns
    ]
    if release:
        parameters.append(sa.bindparam("lease_holder", type_=_T.c.lease_owner.type))
    return sa.text(sql).bindparams(*parameters).columns(_T.c.id, _T.c.version)


# PostgreSQL saves a group of refreshed connections with one of these.
_UPDATE_MANY = {
    release: _update_many_statement(release=release) for release in (False, True)
}


def expiring_soon_statement(horizon: datetime, limit: int) -> sa.Select[Any]:
    """Build the `find_expiring_soon` query; tests EXPLAIN this exact statement."""
    return _EXPIRING_SOON.params(horizon=horizon, limit=limit)


class SqlAlchemyConnectionRepository:
    """Connections stored in `provider_connections`.

    Never commits: the session scope that owns `session` does. Every write runs
    immediately, so constraint errors surface at the call.
    """

    def __init__(self, session: AsyncSession, clock: Clock | None = None) -> None:
        self._session = session
        self._clock = clock or SystemClock()

    async def find_by_id(self, connection_id: UUID) -> ProviderConnection | None:
        result = await self._session.execute(_BY_ID, {"id": connection_id})
        row = result.one_or_none()
        return None if row is None else connection_from_values(row)

    async def find_by_user_id(
        self, user_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        """Return every connection of a user, ordered by `created_at`, then id."""
        return await self._list(_BY_USER, {"user_id": user_id}, limit=limit)

    async def find_by_user_and_provider(
        self, user_id: UUID, provider_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        """Return a user's connections to one provider, by `created_at`, then id."""
        params = {"user_id": user_id, "provider_id": provider_id}
        return await self._list(_BY_USER_AND_PROVIDER, params, limit=limit)

    async def find_active_by_user(
        self, user_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        """Return a user's active connections, by `created_at`, then id."""
        return await self._list(_ACTIVE_BY_USER, {"user_id": user_id}, limit=limit)

    async def save(self, connection: ProviderConnection) -> None:
        """Insert or update with the version check; see the port for the contract."""
        connection.check_invariants()
        values = connection_to_row(connection)
        with _translated_errors(connection):
            if connection.version == 0:
                stored = await self._insert(values)
            else:
                stored = await self._update(values, connection.version)

        if stored is None:
            raise StaleConnectionError(connection.id, connection.version)
        connection.version = stored

    async def save_many(self, connections: Sequence[ProviderConnection]) -> list[bool]:
        """Update stored connections with the version check; see the port."""
        return await update_many(self._session, connections)

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
        params = {"horizon": horizon, "limit": limit}
        result = await self._session.execute(_EXPIRING_SOON, params)
        return entities(result)

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

        statement = _SELECT.where(*conditions).order_by(_T.c.id).limit(limit)
        return entities(await self._session.execute(statement))

    async def count_by_status(self) -> dict[ConnectionStatus, int]:
        statement = sa.select(_T.c.status, sa.func.count()).group_by(_T.c.status)
        counts = dict.fromkeys(ConnectionStatus, 0)
        for status, count in await self._session.execute(statement):
            counts[ConnectionStatus(status)] = count
        return counts

    async def _list(
        self, statement: sa.Select[Any], params: dict[str, Any], *, limit: int | None
    ) -> list[ProviderConnection]:
        if limit is not None:
            statement = statement.limit(limit)
        return entities(await self._session.execute(statement, params))

    async def _insert(self, values: dict[str, Any]) -> int | None:
        # ON CONFLICT DO NOTHING keeps the transaction usable when the id is
        # already taken; the missing RETURNING row then means "stale".
        statement = _INSERTS[self._session.get_bind().dialect.name]
        result = await self._session.execute(statement, {**values, "version": 1})
        version: int | None = result.scalar()
        return version

    async def _update(self, values: dict[str, Any], version: int) -> int | None:
        params = {k: v for k, v in values.items() if k not in _NOT_UPDATED}
        params |= {"match_id": values["id"], "match_version": version}
        result = await self._session.execute(_UPDATE, params)
        new_version: int | None = result.scalar()
        return new_version


async def update_many(
    session: AsyncSession,
    connections: Sequence[ProviderConnection],
    *,
    release_lease_of: str | None = None,
) -> list[bool]:
    """Update stored connections with the version check; True for each stored.

    On PostgreSQL this is one statement. With `release_lease_of`, which only
    the lease repository passes, it also drops that owner's leases on the
    stored rows. SQLite updates row by row in the session's transaction and
    releases nothing, so the lease repository releases there.
    """
    for connection in connections:
        connection.check_invariants()
        if connection.version < 1:
            raise ValueError(
                f"save_many updates stored connections only; connection "
                f"{connection.id} is new (version 0), so save it with save()."
            )
    if not connections:
        return []
    if session.get_bind().dialect.name == "postgresql":
        stored = await _update_many_at_once(session, connections, release_lease_of)
    elif release_lease_of is not None:
        raise ValueError(
            "update_many releases leases only on PostgreSQL; on SQLite call "
            "SqlAlchemyLeaseRepository.store_and_release instead."
        )
    else:
        stored = await _update_row_by_row(session, connections)
    for connection in connections:
        if connection.id in stored:
            connection.version = stored[connection.id]
    return [connection.id in stored for connection in connections]


async def _update_many_at_once(
    session: AsyncSession,
    connections: Sequence[ProviderConnection],
    release_lease_of: str | None,
) -> dict[UUID, int]:
    rows = [connection_to_row(connection) for connection in connections]
    parameters: dict[str, Any] = {
        "match_id": [row["id"] for row in rows],
        "match_version": [c.version for c in connections],
    }
    for name in _UPDATE_MANY_COLUMNS:
        parameters[name] = [row[name] for row in rows]
    if release_lease_of is not None:
        parameters["lease_holder"] = release_lease_of
    statement = _UPDATE_MANY[release_lease_of is not None]
    with _translated_errors(connections[0]):
        result = await session.execute(statement, parameters)
    return {row_id: version for row_id, version in result.all()}


async def _update_row_by_row(
    session: AsyncSession, connections: Sequence[ProviderConnection]
) -> dict[UUID, int]:
    repository = SqlAlchemyConnectionRepository(session)
    stored: dict[UUID, int] = {}
    for connection in connections:
        try:
            await repository.save(connection)
        except StaleConnectionError:
            continue
        stored[connection.id] = connection.version
    return stored


@contextmanager
def _translated_errors(connection: ProviderConnection) -> Iterator[None]:
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
                f"Connection {connection.id} conflicts with a stored row ({detail})."
            ) from error
        raise PersistenceError(
            f"The database rejected connection {connection.id}: {detail}. "
            "The entity breaks a table constraint; fix its fields."
        ) from error


def _first_line(error: BaseException | None) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "no detail"
