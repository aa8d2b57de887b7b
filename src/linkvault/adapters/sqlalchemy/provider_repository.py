"""Providers and the connection event log over an `AsyncSession`."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncSession

from linkvault.adapters.clock import SystemClock
from linkvault.adapters.sqlalchemy.mapping import event_to_row, row_to_event
from linkvault.adapters.sqlalchemy.provider_mapping import (
    provider_to_row,
    row_to_provider,
)
from linkvault.adapters.sqlalchemy.tables import connection_events, providers
from linkvault.domain.errors import DuplicateError
from linkvault.domain.events import FAILURE_EVENTS, ConnectionEvent
from linkvault.domain.provider import Provider
from linkvault.ports.clock import Clock


class SqlAlchemyProviderRepository:
    """Providers stored in `providers`; never commits."""

    def __init__(self, session: AsyncSession, clock: Clock | None = None) -> None:
        self._session = session
        self._clock = clock or SystemClock()

    async def get(self, provider_id: UUID) -> Provider | None:
        return await self._one(providers.c.id == provider_id)

    async def get_by_slug(self, slug: str) -> Provider | None:
        return await self._one(providers.c.slug == slug)

    async def list(self) -> Sequence[Provider]:
        """Return every provider, ordered by slug."""
        statement = sa.select(providers).order_by(providers.c.slug)
        rows = (await self._session.execute(statement)).mappings()
        return [row_to_provider(row) for row in rows]

    async def save(self, provider: Provider) -> None:
        """Insert or update; raises `DuplicateError` if another has the slug."""
        now = self._clock.now()
        provider.created_at = provider.created_at or now
        provider.updated_at = now
        values = provider_to_row(provider)

        try:
            async with self._session.begin_nested():
                await self._upsert(values)
        except exc.IntegrityError as error:
            raise DuplicateError(
                f"Provider slug {provider.slug!r} is already used by another "
                "provider; choose another slug or update that provider."
            ) from error

    async def _upsert(self, values: dict[str, object]) -> None:
        exists = await self._session.execute(
            sa.select(providers.c.id).where(providers.c.id == values["id"])
        )
        if exists.scalar_one_or_none() is None:
            await self._session.execute(sa.insert(providers).values(**values))
            return
        changes = {k: v for k, v in values.items() if k not in ("id", "created_at")}
        await self._session.execute(
            sa.update(providers).where(providers.c.id == values["id"]).values(**changes)
        )

    async def _one(self, condition: sa.ColumnElement[bool]) -> Provider | None:
        statement = sa.select(providers).where(condition)
        row = (await self._session.execute(statement)).mappings().one_or_none()
        return None if row is None else row_to_provider(row)


# Built once: the refresh worker appends an event per refresh.
_INSERT_EVENT = sa.insert(connection_events)


class SqlAlchemyEventLog:
    """Append-only `connection_events`; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, event: ConnectionEvent) -> None:
        await self._session.execute(_INSERT_EVENT, event_to_row(event))

    async def append_many(self, events: Sequence[ConnectionEvent]) -> None:
        if events:
            rows = [event_to_row(event) for event in events]
            await self._session.execute(_INSERT_EVENT, rows)

    async def list_for_connection(
        self, connection_id: UUID, *, limit: int = 100
    ) -> list[ConnectionEvent]:
        """Return a connection's events, oldest first (ties by id)."""
        statement = (
            sa.select(connection_events)
            .where(connection_events.c.connection_id == connection_id)
            .order_by(connection_events.c.occurred_at, connection_events.c.id)
            .limit(limit)
        )
        rows = (await self._session.execute(statement)).mappings()
        return [row_to_event(row) for row in rows]

    async def list_recent_failures(self, *, limit: int = 10) -> list[ConnectionEvent]:
        """Return the newest failure events of any connection, newest first."""
        events = connection_events
        statement = (
            sa.select(events)
            .where(events.c.event_type.in_([t.value for t in FAILURE_EVENTS]))
            .order_by(events.c.occurred_at.desc(), events.c.id.desc())
            .limit(limit)
        )
        rows = (await self._session.execute(statement)).mappings()
        return [row_to_event(row) for row in rows]
