"""Repository ports: connections, providers, the event log and encrypted columns."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from linkvault.domain.authorization import AuthorizationState
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.events import ConnectionEvent
from linkvault.domain.provider import Provider
from linkvault.domain.status import ConnectionStatus


class ConnectionRepository(Protocol):
    """Stores connections. Never commits: the caller's session scope does.

    Lists are ordered stably as each method states, ties broken by id, and
    `limit` caps how many rows come back.
    """

    async def find_by_id(self, connection_id: UUID) -> ProviderConnection | None:
        """Return the connection with this id, or None."""
        ...

    async def find_by_user_id(
        self, user_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        """Return every connection of a user, disconnected ones included.

        Ordered by `created_at`, then id.
        """
        ...

    async def find_by_user_and_provider(
        self, user_id: UUID, provider_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        """Return a user's connections to one provider (there may be several).

        Ordered by `created_at`, then id.
        """
        ...

    async def find_active_by_user(
        self, user_id: UUID, *, limit: int | None = None
    ) -> list[ProviderConnection]:
        """Return a user's `active` connections, ordered by `created_at`, then id."""
        ...

    async def save(self, connection: ProviderConnection) -> None:
        """Insert a new connection or update a stored one (merge semantics).

        An insert stores version 1. An update succeeds only if the stored version
        equals `connection.version`; it then bumps the version and writes it
        back to the entity. Otherwise it raises `StaleConnectionError` and
        changes nothing.
        """
        ...

    async def save_many(self, connections: Sequence[ProviderConnection]) -> list[bool]:
        """Update several stored connections, each with the version check.

        Returns, in order, whether each one was stored. A stored one gets its
        new version, and a stale one is left as it is in the database and in
        memory. On PostgreSQL this is one statement. Raises `ValueError` for
        a connection that was never saved (version 0).
        """
        ...

    async def delete(self, connection_id: UUID) -> None:
        """Delete a connection for good; raises `ConnectionNotFoundError` if absent."""
        ...

    async def find_expiring_soon(
        self, minutes: int = 30, *, limit: int = 1000
    ) -> list[ProviderConnection]:
        """Return active connections whose credentials expire within `minutes`.

        Credentials that already expired are included; connections without an
        expiry are not. Ordered by credentials expiry (most urgent first), then id.
        """
        ...

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
        ...

    async def count_by_status(self) -> dict[ConnectionStatus, int]:
        """Return how many connections are in each status (zero included)."""
        ...


class ProviderRepository(Protocol):
    """Stores providers."""

    async def get(self, provider_id: UUID) -> Provider | None: ...

    async def get_by_slug(self, slug: str) -> Provider | None: ...

    async def list(self) -> Sequence[Provider]:
        """Return every provider, ordered by slug."""
        ...

    async def save(self, provider: Provider) -> None:
        """Insert or update a provider; a duplicate slug raises `DuplicateError`."""
        ...


class EventLog(Protocol):
    """Append-only history of connection events."""

    async def append(self, event: ConnectionEvent) -> None: ...

    async def append_many(self, events: Sequence[ConnectionEvent]) -> None:
        """Append several events in one statement."""
        ...

    async def list_for_connection(
        self, connection_id: UUID, *, limit: int = 100
    ) -> list[ConnectionEvent]:
        """Return a connection's events, oldest first."""
        ...

    async def list_recent_failures(self, *, limit: int = 10) -> list[ConnectionEvent]:
        """Return the newest failure events of any connection, newest first."""
        ...


class StateRepository(Protocol):
    """Pending OAuth 2.0 authorisations."""

    async def add(self, state: AuthorizationState) -> None: ...

    async def find_by_hash(self, state_hash: str) -> AuthorizationState | None: ...

    async def consume(self, state: AuthorizationState, now: datetime) -> bool:
        """Mark the state used; False when it was consumed already."""
        ...

    async def delete_expired(self, now: datetime) -> int: ...


class LeaseRepository(Protocol):
    """Refresh leases; the only writer of the lease columns."""

    async def claim_due(
        self, *, owner: str, now: datetime, lease_for: timedelta, limit: int
    ) -> list[ProviderConnection]:
        """Lease up to `limit` due active connections, most urgent first."""
        ...

    async def claim(
        self, connection_id: UUID, *, owner: str, now: datetime, lease_for: timedelta
    ) -> ProviderConnection | None:
        """Lease one connection; None while another owner's lease is live."""
        ...

    async def release(self, connection_id: UUID, owner: str) -> bool: ...

    async def release_many(self, connection_ids: Sequence[UUID], owner: str) -> int:
        """Drop `owner`'s leases on these connections; returns how many it held."""
        ...

    async def store_and_release(
        self, connections: Sequence[ProviderConnection], owner: str
    ) -> list[bool]:
        """Save refreshed connections, dropping `owner`'s lease on stored ones.

        Each is saved with the version check; returns, in order, whether it
        was stored. A stale one is left unchanged and keeps its lease.
        """
        ...

    async def release_all(self, owner: str) -> int: ...

    async def count_recent_refreshes(
        self, provider_id: UUID, *, since: datetime, excluding: UUID
    ) -> int: ...

    async def lease_of(
        self, connection_id: UUID
    ) -> tuple[str | None, datetime | None]: ...


class UnitOfWork(Protocol):
    """The repositories of one transaction."""

    @property
    def connections(self) -> ConnectionRepository: ...

    @property
    def providers(self) -> ProviderRepository: ...

    @property
    def events(self) -> EventLog: ...

    @property
    def states(self) -> StateRepository: ...

    @property
    def leases(self) -> LeaseRepository: ...


class UnitOfWorkFactory(Protocol):
    """Opens a transaction: commits on clean exit, rolls back on error."""

    def __call__(
        self, *, readonly: bool = False
    ) -> AbstractAsyncContextManager[UnitOfWork]: ...


@dataclass(frozen=True, slots=True)
class EncryptedValue:
    """One stored blob, with the key of its row and its associated data."""

    row_key: str
    blob: bytes
    context: bytes

    def __repr__(self) -> str:
        return (
            f"EncryptedValue(row_key={self.row_key!r}, blob=<{len(self.blob)} bytes>)"
        )


class EncryptedColumn(Protocol):
    """A column of keyring blobs that rewrapping walks in batches."""

    @property
    def name(self) -> str: ...

    async def scan(self, after: str | None, limit: int) -> list[EncryptedValue]:
        """Return up to `limit` non-null blobs whose row key sorts after `after`."""
        ...

    async def swap(self, row_key: str, old: bytes, new: bytes) -> bool:
        """Replace `old` by `new` only if the row still contains `old`."""
        ...
