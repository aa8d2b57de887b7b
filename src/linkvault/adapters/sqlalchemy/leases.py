"""Refresh leases: the short, expiring right of one worker to refresh a connection.

Only these methods write `lease_owner` and `lease_expires_at`; `save` never
does. A lease that its holder does not release (the process died) simply
expires, and the connection becomes claimable again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from linkvault.adapters.sqlalchemy.connection_repository import update_many
from linkvault.adapters.sqlalchemy.mapping import connection_from_values, entities
from linkvault.adapters.sqlalchemy.tables import (
    ACTIVE_PREDICATE,
    ENTITY_COLUMNS,
    provider_connections,
    providers,
)
from linkvault.domain.connection import ProviderConnection

_T = provider_connections


def _claimable(now: datetime | sa.BindParameter[datetime]) -> sa.ColumnElement[bool]:
    return sa.or_(_T.c.lease_expires_at.is_(None), _T.c.lease_expires_at <= now)


def _due_ids(*, skip_locked: bool) -> sa.Select[tuple[UUID]]:
    now = sa.bindparam("claim_now", type_=_T.c.next_refresh_at.type)
    paused = sa.select(providers.c.id).where(providers.c.paused_at.is_not(None))
    statement = (
        sa.select(_T.c.id)
        .where(
            sa.text(ACTIVE_PREDICATE),
            _T.c.next_refresh_at <= now,
            _claimable(now),
            _T.c.provider_id.not_in(paused),
        )
        .order_by(_T.c.next_refresh_at, _T.c.id)
        .limit(sa.bindparam("claim_limit", type_=sa.Integer))
    )
    if skip_locked:
        # Rows another worker is claiming right now are skipped, not waited for.
        statement = statement.with_for_update(skip_locked=True)
    return statement


def _claim_due(*, postgresql: bool) -> sa.Update:
    due = _due_ids(skip_locked=postgresql).scalar_subquery()
    return (
        sa.update(_T)
        .where(_T.c.id.in_(due))
        .values(
            lease_owner=sa.bindparam("claim_owner"),
            lease_expires_at=sa.bindparam("claim_until"),
        )
        .returning(*ENTITY_COLUMNS)
    )


# Built once with bound parameters, so SQLAlchemy computes the cache key a
# single time. Building the UPDATE and its key per call took about 0.4 ms.
_CLAIM_DUE = {True: _claim_due(postgresql=True), False: _claim_due(postgresql=False)}


def claim_due_statement(
    owner: str, now: datetime, lease_for: timedelta, limit: int, *, postgresql: bool
) -> sa.Update:
    """Return the claim UPDATE with its values bound; tests EXPLAIN it."""
    return _CLAIM_DUE[postgresql].params(
        _claim_parameters(owner, now, lease_for, limit)
    )


def _claim_parameters(
    owner: str, now: datetime, lease_for: timedelta, limit: int
) -> dict[str, object]:
    return {
        "claim_owner": owner,
        "claim_until": now + lease_for,
        "claim_now": now,
        "claim_limit": limit,
    }


# Built once: every refresh releases one lease, and building the statement
# per call was a measurable share of a worker's CPU time.
_RELEASE = (
    sa.update(_T)
    .where(
        _T.c.id == sa.bindparam("lease_connection_id"),
        _T.c.lease_owner == sa.bindparam("lease_holder"),
    )
    .values(lease_owner=None, lease_expires_at=None)
)

_RELEASE_MANY = (
    sa.update(_T)
    .where(
        _T.c.id.in_(sa.bindparam("lease_connection_ids", expanding=True)),
        _T.c.lease_owner == sa.bindparam("lease_holder"),
    )
    .values(lease_owner=None, lease_expires_at=None)
)


class SqlAlchemyLeaseRepository:
    """Claims and releases refresh leases; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def _postgresql(self) -> bool:
        return self._session.get_bind().dialect.name == "postgresql"

    async def claim_due(
        self, *, owner: str, now: datetime, lease_for: timedelta, limit: int
    ) -> list[ProviderConnection]:
        """Lease up to `limit` due active connections, most urgent first.

        Due means `next_refresh_at <= now`; connections of paused providers
        and connections under another live lease are skipped. On PostgreSQL
        the subquery locks with SKIP LOCKED, so concurrent workers take
        disjoint batches; on SQLite the single UPDATE runs under the write lock.
        """
        statement = _CLAIM_DUE[self._postgresql]
        parameters = _claim_parameters(owner, now, lease_for, limit)
        result = await self._session.execute(statement, parameters)
        # RETURNING gives no order; the batch is served most urgent first.
        claimed = entities(result)
        claimed.sort(key=lambda c: (c.next_refresh_at or now, c.id))
        return claimed

    async def claim(
        self,
        connection_id: UUID,
        *,
        owner: str,
        now: datetime,
        lease_for: timedelta,
    ) -> ProviderConnection | None:
        """Lease one connection whatever its schedule; None if someone else holds it."""
        statement = (
            sa.update(_T)
            .where(
                _T.c.id == connection_id,
                sa.or_(_claimable(now), _T.c.lease_owner == owner),
            )
            .values(lease_owner=owner, lease_expires_at=now + lease_for)
            .returning(*ENTITY_COLUMNS)
        )
        row = (await self._session.execute(statement)).one_or_none()
        return None if row is None else connection_from_values(row)

    async def release(self, connection_id: UUID, owner: str) -> bool:
        """Drop `owner`'s lease on a connection; False if it held none."""
        parameters = {"lease_connection_id": connection_id, "lease_holder": owner}
        result = await self._session.execute(_RELEASE, parameters)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release_many(self, connection_ids: Sequence[UUID], owner: str) -> int:
        """Drop `owner`'s leases on these connections in one statement."""
        if not connection_ids:
            return 0
        parameters = {
            "lease_connection_ids": list(connection_ids),
            "lease_holder": owner,
        }
        result = await self._session.execute(_RELEASE_MANY, parameters)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def store_and_release(
        self, connections: Sequence[ProviderConnection], owner: str
    ) -> list[bool]:
        """Save refreshed connections and drop `owner`'s lease on the stored ones.

        Each connection is saved with the version check, as `save_many` does.
        A stale one keeps its lease, because its holder saves it again from a
        fresh read. On PostgreSQL this is one statement.
        """
        if self._postgresql:
            return await update_many(self._session, connections, release_lease_of=owner)

        stored = await update_many(self._session, connections)
        ids = [c.id for c, saved in zip(connections, stored, strict=True) if saved]
        await self.release_many(ids, owner)
        return stored

    async def release_all(self, owner: str) -> int:
        """Drop every lease `owner` holds, as a stopping worker does."""
        statement = (
            sa.update(_T)
            .where(_T.c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
        result = await self._session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def count_recent_refreshes(
        self, provider_id: UUID, *, since: datetime, excluding: UUID
    ) -> int:
        """Count other active connections of a provider refreshed since `since`.

        A provider that returns `invalid_client` for one connection while
        others keep refreshing has a problem with that connection's grant,
        not with the client (Schwab does this for a dead 7-day token).
        """
        statement = (
            sa.select(sa.func.count())
            .select_from(_T)
            .where(
                _T.c.provider_id == provider_id,
                _T.c.id != excluding,
                _T.c.last_refresh_at >= since,
                sa.text(ACTIVE_PREDICATE),
            )
        )
        return int((await self._session.execute(statement)).scalar_one())

    async def lease_of(self, connection_id: UUID) -> tuple[str | None, datetime | None]:
        """Return the lease owner and expiry of a connection."""
        statement = sa.select(_T.c.lease_owner, _T.c.lease_expires_at).where(
            _T.c.id == connection_id
        )
        row = (await self._session.execute(statement)).one_or_none()
        return (None, None) if row is None else (row[0], row[1])
