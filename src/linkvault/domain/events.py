"""Append-only history of what happened to each connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from linkvault.domain.timeutil import require_aware


class EventType(StrEnum):
    """What happened to a connection."""

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
