"""In-memory fakes of every port, for unit tests and experiments."""

from linkvault.adapters.memory.cipher import PlainCipher
from linkvault.adapters.memory.repositories import (
    InMemoryConnectionRepository,
    InMemoryEncryptedColumn,
    InMemoryEventLog,
    InMemoryProviderRepository,
    InMemoryStateRepository,
)

__all__ = [
    "InMemoryConnectionRepository",
    "InMemoryEncryptedColumn",
    "InMemoryEventLog",
    "InMemoryProviderRepository",
    "InMemoryStateRepository",
    "PlainCipher",
]
