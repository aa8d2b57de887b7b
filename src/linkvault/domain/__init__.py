"""Domain model of linkvault. Imports only the standard library."""

from linkvault.domain.connection import ProviderConnection
from linkvault.domain.credentials import ApiKey, ProviderCredentials, TokenSet
from linkvault.domain.errors import (
    ConfigurationError,
    ConnectionNotFoundError,
    CredentialsError,
    DatabaseUnavailableError,
    DecryptionError,
    DomainError,
    DuplicateError,
    InvalidConnectionError,
    InvalidProviderError,
    InvalidTransitionError,
    KeyConfigurationError,
    LinkvaultError,
    PersistenceError,
    ProviderNotFoundError,
    StaleConnectionError,
)
from linkvault.domain.events import ConnectionEvent, EventType
from linkvault.domain.provider import Provider, RefreshPolicy, TokenEndpointAuth
from linkvault.domain.status import TRANSITIONS, ConnectionStatus, CredentialType
from linkvault.domain.token_response import (
    RefreshTokenChange,
    RefreshTokenClock,
    TokenErrorKind,
    TokenFailure,
    TokenOutcome,
    TokenResponseSettings,
    TokenSuccess,
    parse_token_response,
)

__all__ = [
    "TRANSITIONS",
    "ApiKey",
    "ConfigurationError",
    "ConnectionEvent",
    "ConnectionNotFoundError",
    "ConnectionStatus",
    "CredentialType",
    "CredentialsError",
    "DatabaseUnavailableError",
    "DecryptionError",
    "DomainError",
    "DuplicateError",
    "EventType",
    "InvalidConnectionError",
    "InvalidProviderError",
    "InvalidTransitionError",
    "KeyConfigurationError",
    "LinkvaultError",
    "PersistenceError",
    "Provider",
    "ProviderConnection",
    "ProviderCredentials",
    "ProviderNotFoundError",
    "RefreshPolicy",
    "RefreshTokenChange",
    "RefreshTokenClock",
    "StaleConnectionError",
    "TokenEndpointAuth",
    "TokenErrorKind",
    "TokenFailure",
    "TokenOutcome",
    "TokenResponseSettings",
    "TokenSet",
    "TokenSuccess",
    "parse_token_response",
]
