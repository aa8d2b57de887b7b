"""The project's exception tree.

LinkvaultError
├── ConfigurationError
│   └── KeyConfigurationError
├── DomainError
│   ├── InvalidTransitionError
│   ├── InvalidConnectionError
│   └── InvalidProviderError
├── CredentialsError
│   └── DecryptionError
└── PersistenceError
    ├── ConnectionNotFoundError
    ├── ProviderNotFoundError
    ├── StaleConnectionError
    ├── DuplicateError
    └── DatabaseUnavailableError
"""

from __future__ import annotations

from uuid import UUID


class LinkvaultError(Exception):
    """Root of every error that linkvault raises on purpose."""


class ConfigurationError(LinkvaultError):
    """Settings are missing or invalid; the message names them and the fix."""


class KeyConfigurationError(ConfigurationError):
    """The encryption keyring is missing, malformed or has no usable primary key."""


class DomainError(LinkvaultError):
    """A domain rule was broken."""


class InvalidTransitionError(DomainError):
    """A connection was asked to move between two statuses the lifecycle forbids."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(
            f"A connection cannot move from {current!r} to {target!r}; "
            "see ConnectionStatus.allowed_targets() for the permitted moves."
        )
        self.current = current
        self.target = target


class InvalidConnectionError(DomainError):
    """A connection's fields contradict each other or a lifecycle invariant."""


class NaiveDatetimeError(DomainError, ValueError):
    """A datetime without a time zone was given where an aware one is required."""


class InvalidProviderError(DomainError):
    """A provider's settings are invalid."""


class AuthorizationError(DomainError):
    """An OAuth 2.0 authorisation could not be started or completed."""


class InvalidStateError(AuthorizationError):
    """A callback's `state` is unknown, used, expired or for another flow.

    Nothing is changed when this is raised; the user has to start again.
    """


class AuthorizationDeniedError(AuthorizationError):
    """The provider or the user refused the authorisation, or the exchange failed."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class CredentialsError(LinkvaultError):
    """Credentials could not be encrypted, decrypted or interpreted."""


class DecryptionError(CredentialsError):
    """A blob failed to decrypt: tampered, bound to another row, or an unknown key."""


class PersistenceError(LinkvaultError):
    """The store failed or rejected an operation."""


class ConnectionNotFoundError(PersistenceError):
    """No connection has the requested id."""

    def __init__(self, connection_id: UUID) -> None:
        super().__init__(
            f"Connection {connection_id} was not found; it may have been deleted. "
            "List the user's connections to find a current id."
        )
        self.connection_id = connection_id


class ProviderNotFoundError(PersistenceError):
    """No provider has the requested id or slug."""

    def __init__(self, provider: object) -> None:
        super().__init__(
            f"Provider {provider!s} was not found; add it first "
            "(for example `linkvault providers add`)."
        )
        self.provider = provider


class StaleConnectionError(PersistenceError):
    """A save carried an older version than the stored row, so it was rejected.

    Another writer (a worker that rotated the refresh token, for example) changed
    the row after this copy was read. Re-read the connection and apply the change
    again; never retry the same stale object.
    """

    def __init__(self, connection_id: UUID, version: int) -> None:
        super().__init__(
            f"Connection {connection_id} was changed by another writer after "
            f"version {version} was read; re-read it and apply the change again."
        )
        self.connection_id = connection_id
        self.version = version


class DuplicateError(PersistenceError):
    """A row with the same unique key already exists."""


class DatabaseUnavailableError(PersistenceError):
    """The database could not be reached or refused the connection."""
