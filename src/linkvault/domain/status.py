"""Connection lifecycle: statuses, credential types and the transition table."""

from __future__ import annotations

from enum import StrEnum

from linkvault.domain.errors import InvalidTransitionError


class ConnectionStatus(StrEnum):
    """Lifecycle state of a connection."""

    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    FAILED = "failed"
    DISCONNECTED = "disconnected"

    def allowed_targets(self) -> frozenset[ConnectionStatus]:
        """Return the statuses this one may move to."""
        return TRANSITIONS[self]

    def can_move_to(self, target: ConnectionStatus) -> bool:
        return target in TRANSITIONS[self]

    def check_move_to(self, target: ConnectionStatus) -> None:
        """Raise `InvalidTransitionError` unless the lifecycle permits the move."""
        if not self.can_move_to(target):
            raise InvalidTransitionError(self.value, target.value)


_S = ConnectionStatus

# The lifecycle as data. `active -> active` stores new credentials (a refresh);
# `disconnected -> disconnected` makes disconnecting idempotent. A failed
# reconnect from expired, revoked or failed keeps its status, so those three
# have no edge to `failed`.
TRANSITIONS: dict[ConnectionStatus, frozenset[ConnectionStatus]] = {
    _S.PENDING: frozenset({_S.ACTIVE, _S.FAILED, _S.DISCONNECTED}),
    _S.ACTIVE: frozenset(
        {_S.ACTIVE, _S.EXPIRED, _S.REVOKED, _S.FAILED, _S.DISCONNECTED}
    ),
    _S.EXPIRED: frozenset({_S.ACTIVE, _S.DISCONNECTED}),
    _S.REVOKED: frozenset({_S.ACTIVE, _S.DISCONNECTED}),
    _S.FAILED: frozenset({_S.ACTIVE, _S.DISCONNECTED}),
    _S.DISCONNECTED: frozenset({_S.DISCONNECTED}),
}


class CredentialType(StrEnum):
    """The kind of secret a provider issued for a connection."""

    OAUTH2 = "oauth2"
    API_KEY = "api_key"
    LINK_TOKEN = "link_token"
    CERTIFICATE = "certificate"
    FILE_IMPORT = "file_import"
    CUSTOM = "custom"

    @property
    def is_refreshable(self) -> bool:
        """Whether credentials of this type can be renewed at a token endpoint."""
        return self in (CredentialType.OAUTH2, CredentialType.LINK_TOKEN)

    @property
    def expires(self) -> bool:
        """Whether credentials of this type can expire at all."""
        return self not in (
            CredentialType.API_KEY,
            CredentialType.CERTIFICATE,
            CredentialType.FILE_IMPORT,
        )
