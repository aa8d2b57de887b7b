"""The connection entity: one user's link to one account at one provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from linkvault.domain.credentials import ProviderCredentials
from linkvault.domain.errors import InvalidConnectionError
from linkvault.domain.status import ConnectionStatus
from linkvault.domain.timeutil import optional_aware, require_aware

_DATETIME_FIELDS = (
    "connected_at",
    "authorized_at",
    "last_sync_at",
    "created_at",
    "updated_at",
    "next_refresh_at",
    "last_refresh_at",
    "refresh_token_expires_at",
)


@dataclass(slots=True, eq=False)
class ProviderConnection:
    """A user's link to an account at a provider, with its lifecycle.

    Status changes go through the methods below, which check the transition
    table and keep the invariants: `active` always has credentials and
    `disconnected` never keeps them. `version` belongs to the repository: it
    is 0 until the first save and then mirrors the stored row.
    """

    id: UUID
    user_id: UUID
    provider_id: UUID
    provider_slug: str
    created_at: datetime
    updated_at: datetime
    status: ConnectionStatus = ConnectionStatus.PENDING
    alias: str | None = None
    credentials: ProviderCredentials | None = None
    # First time the connection became active; kept across reconnects.
    connected_at: datetime | None = None
    # Last interactive authorisation; fixed refresh-token clocks count from it.
    authorized_at: datetime | None = None
    last_sync_at: datetime | None = None
    next_refresh_at: datetime | None = None
    refresh_failures: int = 0
    last_refresh_at: datetime | None = None
    last_refresh_error: str | None = None
    status_reason: str | None = None
    refresh_token_expires_at: datetime | None = None
    version: int = 0

    def __post_init__(self) -> None:
        self.status = ConnectionStatus(self.status)
        self.created_at = require_aware(self.created_at, "created_at")
        for name in _DATETIME_FIELDS:
            setattr(self, name, optional_aware(getattr(self, name), name))
        self.check_invariants()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProviderConnection):
            return NotImplemented
        return self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    @classmethod
    def new(
        cls,
        *,
        id: UUID,
        user_id: UUID,
        provider_id: UUID,
        provider_slug: str,
        now: datetime,
        alias: str | None = None,
    ) -> ProviderConnection:
        """Create a `pending` connection, as the first step of connecting."""
        return cls(
            id=id,
            user_id=user_id,
            provider_id=provider_id,
            provider_slug=provider_slug,
            created_at=now,
            updated_at=now,
            alias=alias,
        )

    def check_invariants(self) -> None:
        """Raise `InvalidConnectionError` if the fields break a lifecycle rule."""
        if self.status is ConnectionStatus.ACTIVE and self.credentials is None:
            raise InvalidConnectionError(
                f"Connection {self.id} is active without credentials; "
                "activate it with the credentials the provider issued."
            )
        if self.status is ConnectionStatus.DISCONNECTED and self.credentials:
            raise InvalidConnectionError(
                f"Connection {self.id} is disconnected but still has credentials; "
                "use disconnect(), which clears them."
            )
        if self.refresh_failures < 0:
            raise InvalidConnectionError(
                f"refresh_failures={self.refresh_failures} must not be negative."
            )

    def activate(
        self,
        credentials: ProviderCredentials,
        now: datetime,
        *,
        next_refresh_at: datetime | None = None,
        refresh_token_expires_at: datetime | None = None,
    ) -> None:
        """Store credentials from a completed authorisation and become `active`."""
        schedule = _Schedule.of(next_refresh_at, refresh_token_expires_at)
        self._move(ConnectionStatus.ACTIVE, now, reason=None)
        self.credentials = credentials
        self.authorized_at = self.updated_at
        self.connected_at = self.connected_at or self.authorized_at
        self._apply_schedule(schedule)

    def replace_credentials(
        self,
        credentials: ProviderCredentials,
        now: datetime,
        *,
        next_refresh_at: datetime | None = None,
        refresh_token_expires_at: datetime | None = None,
    ) -> None:
        """Store refreshed credentials of an `active` connection.

        The refresh token's expiry is kept when none is given, because most
        refresh responses do not restate it.
        """
        if self.status is not ConnectionStatus.ACTIVE:
            raise InvalidConnectionError(
                f"Connection {self.id} is {self.status.value}, so it has no "
                "credentials to refresh; reconnect it instead."
            )
        refreshed_at = require_aware(now, "now")
        schedule = _Schedule.of(
            next_refresh_at, refresh_token_expires_at or self.refresh_token_expires_at
        )
        self.credentials = credentials
        self.last_refresh_at = refreshed_at
        self.updated_at = refreshed_at
        self._apply_schedule(schedule)

    def mark_expired(self, now: datetime, reason: str) -> None:
        """Record that the provider rejected the refresh token or it ran out."""
        self._move(ConnectionStatus.EXPIRED, now, reason=reason)
        self.next_refresh_at = None

    def mark_revoked(self, now: datetime, reason: str) -> None:
        """Record that the provider reported the grant as revoked."""
        self._move(ConnectionStatus.REVOKED, now, reason=reason)
        self.next_refresh_at = None

    def mark_failed(self, now: datetime, reason: str) -> None:
        """Record a failed first connect or an exhausted refresh failure budget."""
        self._move(ConnectionStatus.FAILED, now, reason=reason)
        self.next_refresh_at = None

    def disconnect(self, now: datetime, reason: str | None = None) -> None:
        """Clear the credentials and become `disconnected`; idempotent."""
        self._move(ConnectionStatus.DISCONNECTED, now, reason=reason)
        self.credentials = None
        self.next_refresh_at = None
        self.refresh_token_expires_at = None

    def record_refresh_failure(
        self, now: datetime, error: str, retry_at: datetime
    ) -> None:
        """Count a transient refresh failure and schedule the retry."""
        updated = require_aware(now, "now")
        retry = require_aware(retry_at, "retry_at")
        self.refresh_failures += 1
        self.last_refresh_error = error
        self.next_refresh_at = retry
        self.updated_at = updated

    def _move(
        self, target: ConnectionStatus, now: datetime, reason: str | None
    ) -> None:
        # Validate everything before assigning, so a rejected move changes nothing.
        updated = require_aware(now, "now")
        self.status.check_move_to(target)
        self.status = target
        self.status_reason = reason
        self.updated_at = updated

    def _apply_schedule(self, schedule: _Schedule) -> None:
        self.next_refresh_at = schedule.next_refresh_at
        self.refresh_token_expires_at = schedule.refresh_token_expires_at
        self.refresh_failures = 0
        self.last_refresh_error = None


@dataclass(frozen=True, slots=True)
class _Schedule:
    next_refresh_at: datetime | None
    refresh_token_expires_at: datetime | None

    @classmethod
    def of(
        cls, next_refresh_at: datetime | None, refresh_token_expires_at: datetime | None
    ) -> _Schedule:
        return cls(
            optional_aware(next_refresh_at, "next_refresh_at"),
            optional_aware(refresh_token_expires_at, "refresh_token_expires_at"),
        )
