"""In-memory repositories with the same contracts as the SQLAlchemy ones."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from linkvault.domain.authorization import AuthorizationState
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.errors import (
    ConnectionNotFoundError,
    DuplicateError,
    StaleConnectionError,
)
from linkvault.domain.events import FAILURE_EVENTS, ConnectionEvent
from linkvault.domain.provider import Provider
from linkvault.domain.status import ConnectionStatus
from linkvault.ports.clock import Clock
from linkvault.ports.repositories import EncryptedValue


class InMemoryConnectionRepository:
    """Keeps copies of connections in a dict, so a caller's object is never shared."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._rows: dict[UUID, ProviderConnection] = {}

    async def find_by_id(self, connection_id: UUID) -> ProviderConnection | None:
        row = self._rows.get(connection_id)
        return copy.deepcopy(row) if row else None

    async def find_by_user_id(
        self, user_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        return self._select(lambda c: c.user_id == user_id, limit)

    async def find_by_user_and_provider(
        self, user_id: UUID, provider_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        return self._select(
            lambda c: c.user_id == user_id and c.provider_id == provider_id, limit
        )

    async def find_active_by_user(
        self, user_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        return self._select(
            lambda c: c.user_id == user_id and c.status is ConnectionStatus.ACTIVE,
            limit,
        )

    async def save(self, connection: ProviderConnection) -> None:
        connection.check_invariants()
        stored = self._rows.get(connection.id)
        if stored is not None and stored.version != connection.version:
            raise StaleConnectionError(connection.id, connection.version)

        connection.version = 1 if stored is None else connection.version + 1
        self._rows[connection.id] = copy.deepcopy(connection)

    async def save_many(self, connections: Sequence[ProviderConnection]) -> list[bool]:
        results = []
        for connection in connections:
            if connection.version < 1:
                raise ValueError(
                    f"save_many updates stored connections only; connection "
                    f"{connection.id} is new (version 0), so save it with save()."
                )
            stored = self._rows.get(connection.id)
            current = stored is not None and stored.version == connection.version
            if current:
                await self.save(connection)
            results.append(current)
        return results

    async def delete(self, connection_id: UUID) -> None:
        if self._rows.pop(connection_id, None) is None:
            raise ConnectionNotFoundError(connection_id)

    async def find_expiring_soon(
        self, minutes: int = 30, *, limit: int = 1000
    ) -> list[ProviderConnection]:
        horizon = self._clock.now() + timedelta(minutes=minutes)
        rows = [
            c
            for c in self._rows.values()
            if c.status is ConnectionStatus.ACTIVE
            and c.credentials is not None
            and c.credentials.expires_at is not None
            and c.credentials.expires_at <= horizon
        ]
        rows.sort(key=lambda c: (c.credentials.expires_at, c.id))  # type: ignore[union-attr]
        return [copy.deepcopy(c) for c in rows[:limit]]

    async def list_connections(
        self,
        *,
        user_id: UUID | None = None,
        provider_id: UUID | None = None,
        status: ConnectionStatus | None = None,
        limit: int | None = None,
        after_id: UUID | None = None,
    ) -> list[ProviderConnection]:
        rows = sorted(
            (
                c
                for c in self._rows.values()
                if (user_id is None or c.user_id == user_id)
                and (provider_id is None or c.provider_id == provider_id)
                and (status is None or c.status is status)
                and (after_id is None or c.id > after_id)
            ),
            key=lambda c: c.id,
        )
        return [copy.deepcopy(c) for c in rows[:limit]]

    async def count_by_status(self) -> dict[ConnectionStatus, int]:
        counts = dict.fromkeys(ConnectionStatus, 0)
        for connection in self._rows.values():
            counts[connection.status] += 1
        return counts

    def _select(self, keep: object, limit: int | None) -> list[ProviderConnection]:
        assert callable(keep)
        rows = sorted(
            (c for c in self._rows.values() if keep(c)),
            key=lambda c: (c.created_at, c.id),
        )
        return [copy.deepcopy(c) for c in rows[:limit]]


class InMemoryProviderRepository:
    def __init__(self) -> None:
        self._rows: dict[UUID, Provider] = {}

    async def get(self, provider_id: UUID) -> Provider | None:
        row = self._rows.get(provider_id)
        return copy.deepcopy(row) if row else None

    async def get_by_slug(self, slug: str) -> Provider | None:
        for provider in self._rows.values():
            if provider.slug == slug:
                return copy.deepcopy(provider)
        return None

    async def list(self) -> Sequence[Provider]:
        rows = sorted(self._rows.values(), key=lambda p: p.slug)
        return [copy.deepcopy(p) for p in rows]

    async def save(self, provider: Provider) -> None:
        for other in self._rows.values():
            if other.slug == provider.slug and other.id != provider.id:
                raise DuplicateError(
                    f"Provider slug {provider.slug!r} is already taken by "
                    f"{other.id}; choose another slug or update that provider."
                )
        self._rows[provider.id] = copy.deepcopy(provider)


class InMemoryEventLog:
    def __init__(self) -> None:
        self.events: list[ConnectionEvent] = []

    async def append(self, event: ConnectionEvent) -> None:
        self.events.append(event)

    async def append_many(self, events: Sequence[ConnectionEvent]) -> None:
        self.events.extend(events)

    async def list_for_connection(
        self, connection_id: UUID, *, limit: int = 100
    ) -> list[ConnectionEvent]:
        rows = [e for e in self.events if e.connection_id == connection_id]
        return rows[:limit]

    async def list_recent_failures(self, *, limit: int = 10) -> list[ConnectionEvent]:
        rows = [e for e in self.events if e.event_type in FAILURE_EVENTS]
        rows.sort(key=lambda e: (e.occurred_at, e.id), reverse=True)
        return rows[:limit]


class InMemoryEncryptedColumn:
    """A column of blobs keyed by row key, for rewrap tests."""

    def __init__(self, name: str, rows: dict[str, EncryptedValue]) -> None:
        self._name = name
        self.rows = rows

    @property
    def name(self) -> str:
        return self._name

    async def scan(self, after: str | None, limit: int) -> list[EncryptedValue]:
        keys = sorted(k for k in self.rows if after is None or k > after)
        return [self.rows[k] for k in keys[:limit]]

    async def swap(self, row_key: str, old: bytes, new: bytes) -> bool:
        current = self.rows.get(row_key)
        if current is None or current.blob != old:
            return False
        self.rows[row_key] = EncryptedValue(row_key, new, current.context)
        return True


class InMemoryStateRepository:
    def __init__(self) -> None:
        self.rows: dict[str, AuthorizationState] = {}

    async def add(self, state: AuthorizationState) -> None:
        self.rows[state.state_hash] = copy.deepcopy(state)

    async def find_by_hash(self, state_hash: str) -> AuthorizationState | None:
        row = self.rows.get(state_hash)
        return copy.deepcopy(row) if row else None

    async def consume(self, state: AuthorizationState, now: datetime) -> bool:
        stored = self.rows.get(state.state_hash)
        if stored is None or stored.consumed_at is not None:
            return False
        stored.consumed_at = now
        state.consumed_at = now
        return True

    async def delete_expired(self, now: datetime) -> int:
        expired = [key for key, row in self.rows.items() if row.expires_at < now]
        for key in expired:
            del self.rows[key]
        return len(expired)
