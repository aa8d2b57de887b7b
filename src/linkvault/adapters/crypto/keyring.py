"""The AES-256-GCM keyring: the real adapter of the cipher port.

A keyring contains several keys. The primary key encrypts; every loaded key
decrypts, so blobs written before a rotation stay readable until rewrap has
moved them to the new primary.

Blob format, version 1 (all lengths in bytes)::

    offset  length  field
    0       1       format version, always 0x01
    1       1       n, length of the key id (1-64)
    2       n       key id, ASCII, matching [A-Za-z0-9._-]{1,64}
    2+n     12      nonce, fresh from os.urandom for every encryption
    14+n    m+16    AES-256-GCM ciphertext of the m-byte plaintext, then its tag

The associated data is the caller's `context` (see `linkvault.ports.cipher`),
so a blob decrypts only in the row it was written for. The header is not part
of the associated data; it needs no protection of its own, because a changed
version, key id or nonce makes the tag check fail or the blob unreadable.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from linkvault.domain.errors import (
    CredentialsError,
    DecryptionError,
    KeyConfigurationError,
)

FORMAT_VERSION = 1
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_KEY_ID_LENGTH = 64

# "primary" names the primary key in a key file (`primary: KEY_ID`), so it
# cannot also be a key id.
RESERVED_KEY_IDS = frozenset({"primary"})

_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEADER_SIZE = 2


def is_valid_key_id(key_id: str) -> bool:
    """Tell whether `key_id` is 1-64 characters of [A-Za-z0-9._-] and not reserved."""
    return (
        isinstance(key_id, str)
        and _KEY_ID_PATTERN.fullmatch(key_id) is not None
        and key_id.lower() not in RESERVED_KEY_IDS
    )


def check_key_id(key_id: str) -> str:
    """Return `key_id` unchanged, or raise `KeyConfigurationError` if it is invalid.

    The message does not repeat the rejected value: a misplaced key could stand
    where the id belongs.
    """
    if not is_valid_key_id(key_id):
        raise KeyConfigurationError(
            "A key id must be 1-64 characters of letters, digits, '.', '_' or '-' "
            "and must not be 'primary'; choose an id such as 'main-2025-01'."
        )

    return key_id


class EncryptionKey:
    """One named 256-bit key. Its repr and str show the id, never the bytes."""

    __slots__ = ("_key_id", "_material")

    def __init__(self, key_id: str, material: bytes) -> None:
        check_key_id(key_id)
        if not isinstance(material, bytes | bytearray) or len(material) != KEY_SIZE:
            size = len(material) if isinstance(material, bytes | bytearray) else None
            raise KeyConfigurationError(
                f"Key {key_id!r} must be exactly {KEY_SIZE} bytes, got "
                f"{size if size is not None else type(material).__name__}; "
                "generate one with `linkvault keys add` or "
                "linkvault.adapters.crypto.generate_key()."
            )
        self._key_id = key_id
        self._material = bytes(material)

    @classmethod
    def generate(cls, key_id: str) -> EncryptionKey:
        """Return a new key with fresh random bytes under `key_id`."""
        return cls(key_id, generate_key())

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def material(self) -> bytes:
        """The raw 32 key bytes; keep them out of logs, reprs and messages."""
        return self._material

    def __repr__(self) -> str:
        return f"EncryptionKey(key_id={self._key_id!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EncryptionKey):
            return NotImplemented
        return self._key_id == other._key_id and self._material == other._material

    def __hash__(self) -> int:
        return hash(self._key_id)


class Keyring:
    """AES-256-GCM cipher over several keys: the primary encrypts, all decrypt.

    Args:
        keys: Every key to load; ids must be unique.
        primary: Id of the key that encrypts new blobs.

    Raises:
        KeyConfigurationError: No keys, a duplicate id, or an unknown primary.
    """

    __slots__ = ("_ciphers", "_keys", "_primary")

    def __init__(self, keys: Iterable[EncryptionKey], primary: str) -> None:
        loaded = tuple(keys)
        _check_keys(loaded, primary)
        self._keys = loaded
        self._primary = primary
        self._ciphers = {key.key_id: AESGCM(key.material) for key in loaded}

    @property
    def primary_key_id(self) -> str:
        return self._primary

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of every loaded key, in load order."""
        return tuple(key.key_id for key in self._keys)

    def with_primary(self, key_id: str) -> Keyring:
        """Return a keyring with the same keys and `key_id` as primary."""
        return Keyring(self._keys, primary=key_id)

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt under the primary key, bound to `context`.

        Raises:
            CredentialsError: `plaintext` or `context` is not bytes, `context` is
                empty, or the plaintext is too large for AES-GCM.
        """
        _require_bytes(plaintext, "plaintext")
        _require_bytes(context, "context")
        if not context:
            raise CredentialsError(
                "context is empty; pass the row's associated data, for example "
                "linkvault.ports.cipher.connection_context(connection_id, user_id)."
            )

        key_id = self._primary.encode("ascii")
        nonce = os.urandom(NONCE_SIZE)
        header = bytes((FORMAT_VERSION, len(key_id))) + key_id + nonce
        try:
            sealed = self._ciphers[self._primary].encrypt(nonce, plaintext, context)
        except OverflowError as exc:
            raise CredentialsError(
                f"Plaintext of {len(plaintext)} bytes is too large to encrypt; "
                "store large payloads outside the credentials column."
            ) from exc

        return header + sealed

    def decrypt(self, blob: bytes, context: bytes) -> bytes:
        """Decrypt a blob written under any loaded key, checking it against `context`.

        Raises:
            DecryptionError: The blob is truncated, of an unknown format version,
                under a key that is not loaded, altered, or bound to another
                context. The message names the key id, never key bytes.
        """
        _require_bytes(context, "context")
        key_id, nonce, sealed = _parse(blob)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(
                f"Blob was encrypted under key {key_id!r}, which is not in the "
                f"keyring (loaded: {', '.join(self.key_ids)}); load key {key_id!r} "
                "into the keyring (LINKVAULT_KEYS or the key file) and retry."
            )

        try:
            return cipher.decrypt(nonce, sealed, context)
        except InvalidTag as exc:
            raise DecryptionError(
                f"Blob under key {key_id!r} failed authentication: it was altered "
                "or belongs to another row (its context does not match). If key "
                f"{key_id!r} was regenerated, load the original key {key_id!r}; "
                "otherwise restore the row from a backup or re-authorise the "
                "connection."
            ) from exc

    def key_id_of(self, blob: bytes) -> str:
        """Return the id of the key a blob was encrypted under, without decrypting.

        Raises:
            DecryptionError: The blob's header is truncated or malformed.
        """
        return _parse(blob)[0]

    def __repr__(self) -> str:
        return f"Keyring(primary={self._primary!r}, key_ids={list(self.key_ids)!r})"

    __str__ = __repr__


def generate_key() -> bytes:
    """Return 32 fresh random bytes for a new AES-256 key."""
    return os.urandom(KEY_SIZE)


def encode_key(material: bytes) -> str:
    """Return key bytes as the standard base64 used in key files."""
    return base64.b64encode(material).decode("ascii")


def decode_key(text: str) -> bytes:
    """Decode standard base64 key text (with padding); raise `ValueError` if invalid.

    The error never repeats the text, which may be key material.
    """
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not valid standard base64") from None


def key_file_line(key: EncryptionKey) -> str:
    """Render `key` as one key-file line, `KEY_ID:BASE64_OF_32_BYTES`.

    The line contains the key material: write it only to a file of mode 0600 or a
    secret store, never to logs or a terminal that others can read.
    """
    return f"{key.key_id}:{encode_key(key.material)}"


def _check_keys(keys: tuple[EncryptionKey, ...], primary: str) -> None:
    if not keys:
        raise KeyConfigurationError(
            "The keyring has no keys; create one with `linkvault init` or "
            "`linkvault keys add`."
        )
    seen: set[str] = set()
    for key in keys:
        if not isinstance(key, EncryptionKey):
            raise KeyConfigurationError(
                f"Keyring keys must be EncryptionKey objects, not {type(key).__name__}."
            )
        if key.key_id in seen:
            raise KeyConfigurationError(
                f"Key id {key.key_id!r} is loaded twice; every key needs its own id."
            )
        seen.add(key.key_id)
    if primary not in seen:
        raise KeyConfigurationError(
            f"Primary key {primary!r} is not among the loaded keys "
            f"({', '.join(sorted(seen))}); load it or name a loaded key as primary."
        )


def _parse(blob: bytes) -> tuple[str, bytes, bytes]:
    """Split a blob into key id, nonce and sealed bytes, checking the header."""
    _require_bytes(blob, "blob", error=DecryptionError)
    blob = bytes(blob)
    if len(blob) < _HEADER_SIZE:
        raise _truncated(len(blob))
    version, id_length = blob[0], blob[1]
    if version != FORMAT_VERSION:
        raise DecryptionError(
            f"Blob has format version {version}, but this linkvault reads only "
            f"version {FORMAT_VERSION}; upgrade linkvault if a newer one wrote it, "
            "otherwise the row is corrupted: restore it from a backup or "
            "re-authorise the connection."
        )

    id_end = _HEADER_SIZE + id_length
    if len(blob) < id_end:
        raise _truncated(len(blob))
    raw_id = blob[_HEADER_SIZE:id_end]
    key_id = raw_id.decode("ascii", errors="replace")
    if not is_valid_key_id(key_id):
        raise DecryptionError(
            f"Blob header contains {raw_id!r}, which is not a valid key id, so the row "
            "is corrupted; restore it from a backup or re-authorise the connection."
        )
    if len(blob) < id_end + NONCE_SIZE + TAG_SIZE:
        raise _truncated(len(blob), key_id)

    return key_id, blob[id_end : id_end + NONCE_SIZE], blob[id_end + NONCE_SIZE :]


def _truncated(size: int, key_id: str | None = None) -> DecryptionError:
    under = f" under key {key_id!r}" if key_id else ""
    return DecryptionError(
        f"Blob of {size} bytes{under} is truncated: a keyring blob is at least "
        "a header, a 12-byte nonce and a 16-byte tag. Restore the row from a "
        "backup or re-authorise the connection."
    )


def _require_bytes(
    value: object, name: str, *, error: type[CredentialsError] = CredentialsError
) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise error(f"{name} must be bytes, not {type(value).__name__}.")
