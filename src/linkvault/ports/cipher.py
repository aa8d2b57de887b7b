"""The cipher port: authenticated encryption bound to the row a blob belongs to."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID


class Cipher(Protocol):
    """Encrypts and decrypts blobs under a keyring.

    `context` is associated data: a blob decrypts only with the context it was
    encrypted with, so a blob copied into another row fails.
    """

    @property
    def primary_key_id(self) -> str:
        """Id of the key that new blobs are encrypted under."""
        ...

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt under the primary key; raises `CredentialsError` on bad input."""
        ...

    def decrypt(self, blob: bytes, context: bytes) -> bytes:
        """Decrypt any blob of a loaded key; raises `DecryptionError` otherwise."""
        ...

    def key_id_of(self, blob: bytes) -> str:
        """Return the id of the key a blob was encrypted under, without decrypting."""
        ...


def connection_context(connection_id: UUID, user_id: UUID) -> bytes:
    """Associated data that binds a credentials blob to its connection and user."""
    return f"linkvault:connection:{connection_id}:user:{user_id}".encode()


def provider_context(provider_id: UUID) -> bytes:
    """Associated data that binds a client secret blob to its provider."""
    return f"linkvault:provider:{provider_id}:client_secret".encode()


def oauth_state_context(state_id: UUID) -> bytes:
    """Associated data that binds a PKCE verifier blob to its pending authorisation."""
    return f"linkvault:oauth_state:{state_id}:code_verifier".encode()
