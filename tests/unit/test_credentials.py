"""Credentials value objects: validation, redaction and the token set document."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from linkvault.domain import (
    ApiKey,
    ConnectionStatus,
    CredentialsError,
    CredentialType,
    Provider,
    ProviderConnection,
    ProviderCredentials,
    TokenSet,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# 14:00 at UTC+2 is the same instant as NOW.
NOW_AT_PLUS_TWO = datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

SECRET_BLOB = b"ciphertext-7f3a9c"
ACCESS_TOKEN = "at-5d1e8b"
REFRESH_TOKEN = "rt-c42f06"
ID_TOKEN = "idt-9a7b31"
API_KEY = "key-e8d203"
CLIENT_SECRET_BLOB = b"client-secret-blob-41bd"

RENDERERS: dict[str, Callable[[object], str]] = {"repr": repr, "str": str}


def make_credentials(**changes: Any) -> ProviderCredentials:
    fields: dict[str, Any] = {
        "encrypted_data": SECRET_BLOB,
        "credential_type": CredentialType.OAUTH2,
        "expires_at": NOW,
    }
    fields.update(changes)
    return ProviderCredentials(**fields)


def make_token_set(**changes: Any) -> TokenSet:
    fields: dict[str, Any] = {
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "refresh_token": REFRESH_TOKEN,
        "expires_at": NOW + timedelta(hours=1),
        "refresh_token_expires_at": NOW + timedelta(days=7),
        "scopes": ("read", "trade"),
        "extras": {"id_token": ID_TOKEN, "account": {"number": 42}},
    }
    fields.update(changes)
    return TokenSet(**fields)


def token_document(**changes: Any) -> bytes:
    """Return a valid token set document with some fields replaced."""
    document = json.loads(make_token_set().to_json())
    document.update(changes)
    return json.dumps(document).encode()


def test_credentials_are_immutable() -> None:
    credentials = make_credentials()

    with pytest.raises(dataclasses.FrozenInstanceError):
        credentials.encrypted_data = b"other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        credentials.expires_at = None  # type: ignore[misc]


def test_credentials_copy_bytearray_input() -> None:
    buffer = bytearray(SECRET_BLOB)
    credentials = make_credentials(encrypted_data=buffer)

    buffer[0:4] = b"XXXX"

    assert type(credentials.encrypted_data) is bytes
    assert credentials.encrypted_data == SECRET_BLOB


@pytest.mark.parametrize("empty", [b"", bytearray()], ids=["bytes", "bytearray"])
def test_credentials_reject_empty_data(empty: bytes) -> None:
    with pytest.raises(CredentialsError, match="empty"):
        make_credentials(encrypted_data=empty)


def test_credentials_reject_text_data() -> None:
    with pytest.raises(CredentialsError, match="str"):
        make_credentials(encrypted_data="ciphertext")


def test_credentials_coerce_type_value() -> None:
    credentials = make_credentials(credential_type="api_key")

    assert credentials.credential_type is CredentialType.API_KEY


def test_credentials_reject_naive_expiry() -> None:
    with pytest.raises(ValueError, match="expires_at"):
        make_credentials(expires_at=datetime(2026, 1, 1, 12, 0))


def test_credentials_convert_expiry_to_utc() -> None:
    credentials = make_credentials(expires_at=NOW_AT_PLUS_TWO)

    assert credentials.expires_at == NOW
    assert credentials.expires_at is not None
    assert credentials.expires_at.tzinfo is UTC


def test_credentials_allow_no_expiry() -> None:
    credentials = make_credentials(expires_at=None)

    assert credentials.expires_at is None
    assert not credentials.is_expired(NOW)


@pytest.mark.parametrize(
    ("offset", "expired"),
    [
        (timedelta(seconds=-1), False),
        (timedelta(0), True),
        (timedelta(seconds=1), True),
    ],
    ids=["before", "at", "after"],
)
def test_credentials_is_expired(offset: timedelta, expired: bool) -> None:
    credentials = make_credentials(expires_at=NOW)

    assert credentials.is_expired(NOW + offset) is expired


@pytest.mark.parametrize("render", list(RENDERERS))
def test_credentials_text_hides_bytes(render: str) -> None:
    text = RENDERERS[render](make_credentials())

    assert SECRET_BLOB.decode() not in text
    assert repr(SECRET_BLOB) not in text
    assert f"<{len(SECRET_BLOB)} bytes>" in text
    assert "oauth2" in text


def test_credentials_format_hides_bytes() -> None:
    text = f"{make_credentials()}"

    assert SECRET_BLOB.decode() not in text


def test_connection_repr_hides_credential_bytes() -> None:
    connection = ProviderConnection(
        id=uuid4(),
        user_id=uuid4(),
        provider_id=uuid4(),
        provider_slug="schwab",
        created_at=NOW,
        updated_at=NOW,
        status=ConnectionStatus.ACTIVE,
        credentials=make_credentials(),
    )

    assert SECRET_BLOB.decode() not in repr(connection)


@pytest.mark.parametrize("render", list(RENDERERS))
def test_token_set_text_hides_tokens(render: str) -> None:
    text = RENDERERS[render](make_token_set())

    assert ACCESS_TOKEN not in text
    assert REFRESH_TOKEN not in text
    assert ID_TOKEN not in text
    assert "Bearer" in text


def test_repr_shows_absent_refresh_token() -> None:
    text = repr(make_token_set(refresh_token=None))

    assert "refresh_token=None" in text


@pytest.mark.parametrize("render", list(RENDERERS))
def test_api_key_text_hides_key(render: str) -> None:
    api_key = ApiKey(key=API_KEY, extras={"secret_id": ID_TOKEN})

    text = RENDERERS[render](api_key)

    assert API_KEY not in text
    assert ID_TOKEN not in text


@pytest.mark.parametrize("render", list(RENDERERS))
def test_provider_text_hides_client_secret(render: str) -> None:
    provider = Provider(
        id=uuid4(),
        slug="schwab",
        name="Charles Schwab",
        credential_type=CredentialType.OAUTH2,
        authorization_url="https://api.example.test/oauth/authorize",
        token_url="https://api.example.test/oauth/token",
        client_id="client-id",
        client_secret_env="SCHWAB_CLIENT_SECRET",
        client_secret_encrypted=CLIENT_SECRET_BLOB,
    )

    text = RENDERERS[render](provider)

    assert CLIENT_SECRET_BLOB.decode() not in text
    assert repr(CLIENT_SECRET_BLOB) not in text
    assert "<encrypted>" in text


def test_token_set_requires_access_token() -> None:
    with pytest.raises(CredentialsError, match="access_token"):
        make_token_set(access_token="")


@pytest.mark.parametrize("name", ["expires_at", "refresh_token_expires_at"])
def test_token_set_rejects_naive_expiry(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make_token_set(**{name: datetime(2026, 1, 1, 13, 0)})


def test_token_set_converts_expiry_to_utc() -> None:
    token_set = make_token_set(expires_at=NOW_AT_PLUS_TWO)

    assert token_set.expires_at == NOW
    assert token_set.expires_at is not None
    assert token_set.expires_at.tzinfo is UTC


def test_token_set_stores_scopes_as_tuple() -> None:
    token_set = make_token_set(scopes=["read", "trade"])

    assert token_set.scopes == ("read", "trade")


def test_token_set_round_trips_every_field() -> None:
    original = make_token_set()

    restored = TokenSet.from_json(original.to_json())

    assert restored == original
    assert restored.extras == {"id_token": ID_TOKEN, "account": {"number": 42}}
    assert restored.expires_at is not None
    assert restored.expires_at.tzinfo is not None


def test_token_set_round_trips_none_fields() -> None:
    original = TokenSet(access_token=ACCESS_TOKEN)

    restored = TokenSet.from_json(original.to_json())

    assert restored == original
    assert restored.refresh_token is None
    assert restored.expires_at is None
    assert restored.refresh_token_expires_at is None
    assert restored.scopes == ()
    assert restored.extras == {}


def test_token_set_document_is_tagged() -> None:
    document = json.loads(make_token_set().to_json())

    assert document["kind"] == "oauth2"


def test_api_key_round_trips() -> None:
    original = ApiKey(key=API_KEY, extras={"region": "eu"})

    restored = ApiKey.from_json(original.to_json())

    assert restored == original


def test_api_key_requires_key() -> None:
    with pytest.raises(CredentialsError):
        ApiKey(key="")


GARBAGE_DOCUMENTS = {
    "empty": b"",
    "not-json": b"access_token=abc",
    "invalid-utf8": b"\xff\xfe\xfd",
    "truncated": token_document()[:-5],
    "array": b"[]",
    "null": b"null",
    "number": b"42",
    "string": b'"at-5d1e8b"',
    "empty-object": b"{}",
    "api-key-document": ApiKey(key=API_KEY).to_json(),
    "empty-access-token": token_document(access_token=""),
    "unparsable-expiry": token_document(expires_at="tomorrow"),
    "naive-expiry": token_document(expires_at="2026-01-01T12:00:00"),
    "numeric-expiry": token_document(expires_at=1767268800),
    "numeric-scopes": token_document(scopes=5),
    "scalar-extras": token_document(extras=[1, 2]),
}


@pytest.mark.parametrize("data", GARBAGE_DOCUMENTS.values(), ids=GARBAGE_DOCUMENTS)
def test_token_set_from_garbage_raises(data: bytes) -> None:
    with pytest.raises(CredentialsError):
        TokenSet.from_json(data)


@pytest.mark.parametrize("missing", ["access_token", "refresh_token", "scopes"])
def test_token_set_from_incomplete_raises(missing: str) -> None:
    document = json.loads(make_token_set().to_json())
    del document[missing]

    with pytest.raises(CredentialsError):
        TokenSet.from_json(json.dumps(document).encode())


def test_api_key_from_token_document_raises() -> None:
    with pytest.raises(CredentialsError):
        ApiKey.from_json(make_token_set().to_json())


WRONG_TYPE_DOCUMENTS = {
    "numeric-access-token": token_document(access_token=12345),
    "string-scopes": token_document(scopes="read trade"),
}


@pytest.mark.parametrize(
    "data", WRONG_TYPE_DOCUMENTS.values(), ids=WRONG_TYPE_DOCUMENTS
)
def test_token_set_from_wrong_types_raises(data: bytes) -> None:
    with pytest.raises(CredentialsError):
        TokenSet.from_json(data)
