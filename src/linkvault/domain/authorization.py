"""Pending authorisations: the state of an OAuth 2.0 authorization code flow."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from linkvault.domain.timeutil import optional_aware, require_aware

# How long a user has to finish at the provider before the state expires.
AUTHORIZATION_TTL = timedelta(minutes=10)


def hash_state(state: str) -> str:
    """Return the SHA-256 hex digest under which a state value is stored."""
    return hashlib.sha256(state.encode()).hexdigest()


@dataclass(slots=True)
class AuthorizationState:
    """One started authorisation, waiting for the provider's callback.

    Only the SHA-256 of the `state` value is stored, so a database reader
    cannot complete someone else's flow; the PKCE verifier is stored encrypted.
    """

    id: UUID
    state_hash: str
    connection_id: UUID
    user_id: UUID
    provider_id: UUID
    redirect_uri: str
    code_verifier_encrypted: bytes | None
    created_at: datetime
    expires_at: datetime
    consumed_at: datetime | None = None

    def __post_init__(self) -> None:
        self.created_at = require_aware(self.created_at, "created_at")
        self.expires_at = require_aware(self.expires_at, "expires_at")
        self.consumed_at = optional_aware(self.consumed_at, "consumed_at")

    def __repr__(self) -> str:
        expires = self.expires_at.isoformat()
        return (
            f"AuthorizationState(id={self.id}, connection_id={self.connection_id}, "
            f"provider_id={self.provider_id}, expires_at={expires}, "
            f"consumed={self.consumed_at is not None})"
        )

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at
