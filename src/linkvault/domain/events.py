"""Append-only history of what happened to each connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from linkvault.domain.connection import ProviderConnection
from linkvault.domain.timeutil import require_aware


class EventType(StrEnum):
    """Kind of change recorded in a connection's history."""

    CREATED = "created"
    CONNECTED = "connected"
    CONNECT_FAILED = "connect_failed"
    RECONNECTED = "reconnected"
    RECONNECT_FAILED = "reconnect_failed"
    REFRESHED = "refreshed"
    REFRESH_FAILED = "refresh_failed"
    EXPIRED = "expired"
    REVOKED = "revoked"
    FAILED = "failed"
    DISCONNECTED = "disconnected"
    DELETED = "deleted"
    REWRAPPED = "rewrapped"


FAILURE_EVENTS = frozenset(
    {
        EventType.CONNECT_FAILED,
        EventType.RECONNECT_FAILED,
        EventType.REFRESH_FAILED,
        EventType.EXPIRED,
        EventType.REVOKED,
        EventType.FAILED,
    }
)


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """One entry in a connection's history. Never carries a secret."""

    id: UUID
    connection_id: UUID
    user_id: UUID
    provider_slug: str
    event_type: EventType
    occurred_at: datetime
    actor: str = "system"
    status_before: str | None = None
    status_after: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_type", EventType(self.event_type))
        aware = require_aware(self.occurred_at, "occurred_at")
        object.__setattr__(self, "occurred_at", aware)

    @classmethod
    def record(
        cls,
        *,
        id: UUID,
        connection: ProviderConnection,
        event_type: EventType,
        occurred_at: datetime,
        status_before: str | None,
        reason: str | None = None,
        actor: str = "system",
        details: dict[str, Any] | None = None,
    ) -> ConnectionEvent:
        """Build the event for something that just happened to `connection`."""
        return cls(
            id=id,
            connection_id=connection.id,
            user_id=connection.user_id,
            provider_slug=connection.provider_slug,
            event_type=event_type,
            occurred_at=occurred_at,
            actor=actor,
            status_before=status_before,
            status_after=connection.status.value,
            reason=reason,
            details=details or {},
        )
