"""A transparent cipher fake that still enforces the context binding."""

from __future__ import annotations

from linkvault.domain.errors import DecryptionError

_SEPARATOR = b"\x00"


class PlainCipher:
    """Test double for the cipher port: no secrecy, but context is checked.

    The blob is `key_id NUL context NUL plaintext`, so tests can see what a
    real keyring would have encrypted. Never use it outside tests.
    """

    def __init__(self, key_id: str = "fake") -> None:
        self._key_id = key_id

    @property
    def primary_key_id(self) -> str:
        return self._key_id

    def use_primary(self, key_id: str) -> None:
        self._key_id = key_id

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        return _SEPARATOR.join([self._key_id.encode(), context, plaintext])

    def decrypt(self, blob: bytes, context: bytes) -> bytes:
        parts = blob.split(_SEPARATOR, 2)
        if len(parts) != 3 or parts[1] != context:
            raise DecryptionError("Blob does not match its context.")
        return parts[2]

    def key_id_of(self, blob: bytes) -> str:
        return blob.split(_SEPARATOR, 1)[0].decode()
