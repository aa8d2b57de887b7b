"""Client secrets: where they come from, how they are sealed, what errors show."""

from __future__ import annotations

import pytest

from factories import make_provider
from linkvault.adapters.crypto import EncryptionKey, Keyring
from linkvault.adapters.memory.cipher import PlainCipher
from linkvault.application.client_secrets import (
    resolve_client_credentials,
    seal_client_secret,
)
from linkvault.domain import ConfigurationError, CredentialsError, CredentialType
from linkvault.domain.errors import DecryptionError
from linkvault.domain.provider import TokenEndpointAuth

ENV_SECRET = "env-secret-1a2b"
STORED_SECRET = "stored-secret-3c4d"


@pytest.fixture
def cipher() -> PlainCipher:
    return PlainCipher()


def test_environment_secret_used(cipher: PlainCipher) -> None:
    provider = make_provider("acme")

    client = resolve_client_credentials(
        provider, cipher, {"ACME_CLIENT_SECRET": ENV_SECRET}
    )

    assert client.client_id == "acme-client"
    assert client.client_secret == ENV_SECRET


def test_environment_wins_over_stored(cipher: PlainCipher) -> None:
    provider = make_provider("acme")
    seal_client_secret(provider, cipher, STORED_SECRET)

    client = resolve_client_credentials(
        provider, cipher, {"ACME_CLIENT_SECRET": ENV_SECRET}
    )

    assert client.client_secret == ENV_SECRET


def test_stored_secret_used_without_env(cipher: PlainCipher) -> None:
    provider = make_provider("acme")
    seal_client_secret(provider, cipher, STORED_SECRET)

    client = resolve_client_credentials(provider, cipher, {})

    assert client.client_secret == STORED_SECRET


def test_empty_env_falls_back_to_stored(cipher: PlainCipher) -> None:
    provider = make_provider("acme")
    seal_client_secret(provider, cipher, STORED_SECRET)

    client = resolve_client_credentials(provider, cipher, {"ACME_CLIENT_SECRET": ""})

    assert client.client_secret == STORED_SECRET


def test_stored_secret_without_env_name(cipher: PlainCipher) -> None:
    provider = make_provider("acme", client_secret_env=None)
    seal_client_secret(provider, cipher, STORED_SECRET)

    client = resolve_client_credentials(provider, cipher, {})

    assert client.client_secret == STORED_SECRET


def test_public_client_needs_no_secret(cipher: PlainCipher) -> None:
    provider = make_provider(
        "acme", token_endpoint_auth=TokenEndpointAuth.NONE, client_secret_env=None
    )

    client = resolve_client_credentials(provider, cipher, {})

    assert client.client_id == "acme-client"
    assert client.client_secret is None


def test_public_client_never_sends_secret(cipher: PlainCipher) -> None:
    provider = make_provider("acme", token_endpoint_auth=TokenEndpointAuth.NONE)

    client = resolve_client_credentials(
        provider, cipher, {"ACME_CLIENT_SECRET": ENV_SECRET}
    )

    assert client.client_secret is None


def test_missing_secret_names_variable(cipher: PlainCipher) -> None:
    provider = make_provider("acme")

    with pytest.raises(ConfigurationError) as caught:
        resolve_client_credentials(provider, cipher, {})

    message = str(caught.value)
    assert "Provider 'acme' has no client secret" in message
    assert "ACME_CLIENT_SECRET is not set" in message
    assert "linkvault providers set-secret acme" in message


def test_empty_variable_reported_empty(cipher: PlainCipher) -> None:
    provider = make_provider("acme")

    with pytest.raises(ConfigurationError) as caught:
        resolve_client_credentials(provider, cipher, {"ACME_CLIENT_SECRET": ""})

    assert "ACME_CLIENT_SECRET is empty" in str(caught.value)


def test_missing_secret_without_env_name(cipher: PlainCipher) -> None:
    provider = make_provider("acme", client_secret_env=None)

    with pytest.raises(ConfigurationError) as caught:
        resolve_client_credentials(provider, cipher, {})

    message = str(caught.value)
    assert "client_secret_env is not set" in message
    assert "linkvault providers set-secret acme" in message


def test_missing_client_id_rejected(cipher: PlainCipher) -> None:
    provider = make_provider("acme", credential_type=CredentialType.API_KEY)
    provider.client_id = None

    with pytest.raises(ConfigurationError) as caught:
        resolve_client_credentials(provider, cipher, {})

    assert "Provider 'acme' has no client_id" in str(caught.value)


def test_default_environ_is_process_env(
    cipher: PlainCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_CLIENT_SECRET", ENV_SECRET)
    provider = make_provider("acme")

    client = resolve_client_credentials(provider, cipher)

    assert client.client_secret == ENV_SECRET


def test_sealed_secret_bound_to_provider(cipher: PlainCipher) -> None:
    provider = make_provider("acme")
    other = make_provider("other")
    seal_client_secret(provider, cipher, STORED_SECRET)
    other.client_secret_encrypted = provider.client_secret_encrypted

    with pytest.raises(DecryptionError) as caught:
        resolve_client_credentials(other, cipher, {})

    message = str(caught.value)
    assert "client secret of provider 'other' does not decrypt" in message
    assert "linkvault providers set-secret other" in message
    assert STORED_SECRET not in message


def test_keyring_blob_hides_secret() -> None:
    keyring = Keyring([EncryptionKey.generate("k1")], primary="k1")
    provider = make_provider("acme")

    seal_client_secret(provider, keyring, STORED_SECRET)

    assert provider.client_secret_encrypted is not None
    assert STORED_SECRET.encode() not in provider.client_secret_encrypted
    assert keyring.key_id_of(provider.client_secret_encrypted) == "k1"
    assert resolve_client_credentials(provider, keyring, {}).client_secret == (
        STORED_SECRET
    )


def test_unknown_key_names_key_id() -> None:
    provider = make_provider("acme")
    seal_client_secret(provider, Keyring([EncryptionKey.generate("old")], "old"), "s")
    current = Keyring([EncryptionKey.generate("new")], primary="new")

    with pytest.raises(DecryptionError) as caught:
        resolve_client_credentials(provider, current, {})

    assert "it names key 'old'" in str(caught.value)


@pytest.mark.parametrize("secret", ["", "   "])
def test_empty_secret_rejected(cipher: PlainCipher, secret: str) -> None:
    provider = make_provider("acme")

    with pytest.raises(CredentialsError) as caught:
        seal_client_secret(provider, cipher, secret)

    assert "client secret for provider 'acme' is empty" in str(caught.value)
    assert provider.client_secret_encrypted is None


def test_repr_hides_resolved_secret(cipher: PlainCipher) -> None:
    provider = make_provider("acme")

    client = resolve_client_credentials(
        provider, cipher, {"ACME_CLIENT_SECRET": ENV_SECRET}
    )

    assert ENV_SECRET not in repr(client)
