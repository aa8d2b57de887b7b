"""Ports: the interfaces the application needs, as `typing.Protocol` classes.

Each has a real adapter under `linkvault.adapters` and an in-memory fake under
`linkvault.adapters.memory`.
"""

from linkvault.ports.cipher import (
    Cipher,
    connection_context,
    oauth_state_context,
    provider_context,
)
from linkvault.ports.clock import Clock
from linkvault.ports.repositories import (
    ConnectionRepository,
    EncryptedColumn,
    EncryptedValue,
    EventLog,
    LeaseRepository,
    ProviderRepository,
    StateRepository,
    UnitOfWork,
    UnitOfWorkFactory,
)

__all__ = [
    "Cipher",
    "Clock",
    "ConnectionRepository",
    "EncryptedColumn",
    "EncryptedValue",
    "EventLog",
    "LeaseRepository",
    "ProviderRepository",
    "StateRepository",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "connection_context",
    "oauth_state_context",
    "provider_context",
]
