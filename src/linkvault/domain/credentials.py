"""Credentials as stored (encrypted) and token sets as used (decrypted)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from linkvault.domain.errors import CredentialsError
from linkvault.domain.status import CredentialType
from linkvault.domain.timeutil import optional_aware


@dataclass(frozen=True, slots=True)
class ProviderCredentials:
    """Encrypted credentials of one connection.

    The domain never handles plaintext: `encrypted_data` is a keyring blob bound to
    its connection, so the repr shows only its length.
    """

    encrypted_data: bytes
    credential_type: CredentialType
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.encrypted_data, bytes | bytearray):
            raise CredentialsError(
                "encrypted_data must be bytes from the cipher, "
                f"not {type(self.encrypted_data).__name__}."
            )
        if not self.encrypted_data:
            raise CredentialsError(
                "encrypted_data is empty; encrypt the token set or key first, "
                "or pass credentials=None for a connection without credentials."
            )
        object.__setattr__(self, "encrypted_data", bytes(self.encrypted_data))
        object.__setattr__(
            self, "credential_type", CredentialType(self.credential_type)
        )
        aware = optional_aware(self.expires_at, "expires_at")
        object.__setattr__(self, "expires_at", aware)

    def __repr__(self) -> str:
        expires = self.expires_at.isoformat() if self.expires_at else None
        return (
            f"ProviderCredentials(credential_type={self.credential_type.value!r}, "
            f"expires_at={expires!r}, "
            f"encrypted_data=<{len(self.encrypted_data)} bytes>)"
        )

    __str__ = __repr__

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _redacted(value: str | None) -> str:
    return "None" if value is None else "'***'"


@dataclass(frozen=True, slots=True)
class TokenSet:
    """Decrypted OAuth 2.0 tokens of one connection (RFC 6749 section 5.1).

    Lives only in memory while the application talks to the provider; it is
    encrypted before it is stored. Its repr and str hide both tokens and every
    extra field, since providers put secrets (id tokens, for example) there.
    """

    access_token: str
    token_type: str = "Bearer"
    refresh_token: str | None = None
    expires_at: datetime | None = None
    refresh_token_expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.access_token, str) or not self.access_token:
            raise CredentialsError("A token set needs a non-empty access_token string.")
        if not isinstance(self.token_type, str):
            raise CredentialsError("token_type must be a string such as 'Bearer'.")
        if self.refresh_token is not None and not isinstance(self.refresh_token, str):
            raise CredentialsError("refresh_token must be a string or None.")
        if isinstance(self.scopes, str) or not all(
            isinstance(scope, str) for scope in self.scopes
        ):
            raise CredentialsError(
                "scopes must be a sequence of strings; split a scope string "
                "such as 'read trade' first."
            )
        object.__setattr__(
            self, "expires_at", optional_aware(self.expires_at, "expires_at")
        )
        refresh_expiry = optional_aware(
            self.refresh_token_expires_at, "refresh_token_expires_at"
        )
        object.__setattr__(self, "refresh_token_expires_at", refresh_expiry)
        object.__setattr__(self, "scopes", tuple(self.scopes))

    def __repr__(self) -> str:
        expires = self.expires_at.isoformat() if self.expires_at else None
        return (
            f"TokenSet(token_type={self.token_type!r}, access_token='***', "
            f"refresh_token={_redacted(self.refresh_token)}, expires_at={expires!r}, "
            f"scopes={self.scopes!r}, extras=<{len(self.extras)} fields>)"
        )

    __str__ = __repr__

    def to_json(self) -> bytes:
        """Serialise to the JSON document that the cipher encrypts."""
        document = {
            "kind": "oauth2",
            "access_token": self.access_token,
            "token_type": self.token_type,
            "refresh_token": self.refresh_token,
            "expires_at": _iso(self.expires_at),
            "refresh_token_expires_at": _iso(self.refresh_token_expires_at),
            "scopes": list(self.scopes),
            "extras": self.extras,
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TokenSet:
        """Rebuild a token set from `to_json` output."""
        try:
            document = json.loads(data)
            return cls(
                access_token=document["access_token"],
                token_type=document["token_type"],
                refresh_token=document["refresh_token"],
                expires_at=_parse_iso(document["expires_at"]),
                refresh_token_expires_at=_parse_iso(
                    document["refresh_token_expires_at"]
                ),
                scopes=document["scopes"],
                extras=dict(document["extras"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CredentialsError(
                "Decrypted credentials are not a token set document; the "
                "connection may hold another credential type."
            ) from exc


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A decrypted API key; repr and str hide it."""

    key: str
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise CredentialsError("An API key must be a non-empty string.")

    def __repr__(self) -> str:
        return f"ApiKey(key='***', extras=<{len(self.extras)} fields>)"

    __str__ = __repr__

    def to_json(self) -> bytes:
        document = {"kind": "api_key", "key": self.key, "extras": self.extras}
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ApiKey:
        try:
            document = json.loads(data)
            return cls(key=document["key"], extras=dict(document["extras"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise CredentialsError(
                "Decrypted credentials are not an API key document."
            ) from exc


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
