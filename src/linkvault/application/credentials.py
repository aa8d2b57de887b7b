"""Sealing and opening credentials: the only place plaintext meets the cipher."""

from __future__ import annotations

from linkvault.domain.connection import ProviderConnection
from linkvault.domain.credentials import ApiKey, ProviderCredentials, TokenSet
from linkvault.domain.errors import CredentialsError
from linkvault.domain.status import CredentialType
from linkvault.ports.cipher import Cipher, connection_context


def seal_token_set(
    cipher: Cipher, connection: ProviderConnection, tokens: TokenSet
) -> ProviderCredentials:
    """Encrypt a token set for `connection`; its expiry is the access token's."""
    context = connection_context(connection.id, connection.user_id)
    return ProviderCredentials(
        encrypted_data=cipher.encrypt(tokens.to_json(), context),
        credential_type=CredentialType.OAUTH2,
        expires_at=tokens.expires_at,
    )


def seal_api_key(
    cipher: Cipher, connection: ProviderConnection, key: ApiKey
) -> ProviderCredentials:
    """Encrypt an API key for `connection`; API keys do not expire."""
    context = connection_context(connection.id, connection.user_id)
    return ProviderCredentials(
        encrypted_data=cipher.encrypt(key.to_json(), context),
        credential_type=CredentialType.API_KEY,
    )


def open_token_set(cipher: Cipher, connection: ProviderConnection) -> TokenSet:
    """Decrypt the token set of `connection`.

    Raises:
        CredentialsError: The connection has no OAuth credentials.
        DecryptionError: The blob does not decrypt for this connection.
    """
    credentials = _require_credentials(connection)
    if not credentials.credential_type.is_refreshable:
        raise CredentialsError(
            f"Connection {connection.id} holds {credentials.credential_type.value} "
            "credentials, not an OAuth token set."
        )
    context = connection_context(connection.id, connection.user_id)
    return TokenSet.from_json(cipher.decrypt(credentials.encrypted_data, context))


def open_api_key(cipher: Cipher, connection: ProviderConnection) -> ApiKey:
    """Decrypt the API key of `connection`."""
    credentials = _require_credentials(connection)
    context = connection_context(connection.id, connection.user_id)
    return ApiKey.from_json(cipher.decrypt(credentials.encrypted_data, context))


def _require_credentials(connection: ProviderConnection) -> ProviderCredentials:
    if connection.credentials is None:
        raise CredentialsError(
            f"Connection {connection.id} is {connection.status.value} and has no "
            "credentials; connect it first."
        )
    return connection.credentials
