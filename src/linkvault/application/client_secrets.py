"""OAuth client secrets: read from the environment or from the keyring store.

A provider's client secret comes from the environment variable named by
`client_secret_env` when that variable is set and non-empty, else from
`client_secret_encrypted`, a keyring blob bound to the provider's id. Neither
the secret nor any part of it appears in an error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from linkvault.domain.errors import (
    ConfigurationError,
    CredentialsError,
    DecryptionError,
    LinkvaultError,
)
from linkvault.domain.provider import Provider, TokenEndpointAuth
from linkvault.ports.cipher import Cipher, provider_context
from linkvault.ports.token_endpoint import ClientCredentials


def resolve_client_credentials(
    provider: Provider, cipher: Cipher, environ: Mapping[str, str] | None = None
) -> ClientCredentials:
    """Return the client id and secret to authenticate at `provider`'s token endpoint.

    A provider with `token_endpoint_auth = none` is a public client and gets
    no secret, even when one is configured.

    Args:
        provider: The provider whose client is authenticating.
        cipher: Decrypts `client_secret_encrypted`.
        environ: The environment to read; `os.environ` when None.

    Raises:
        ConfigurationError: The provider has no client_id, or no secret is set
            in the environment or stored. The message names the variable and
            the command that stores a secret.
        DecryptionError: The stored secret does not decrypt with the loaded keys.
    """
    if not provider.client_id:
        raise ConfigurationError(
            f"Provider {provider.slug!r} has no client_id; set client_id in its "
            "definition and import it again."
        )
    if provider.token_endpoint_auth is TokenEndpointAuth.NONE:
        return ClientCredentials(provider.client_id)

    env = os.environ if environ is None else environ
    if provider.client_secret_env and env.get(provider.client_secret_env):
        return ClientCredentials(provider.client_id, env[provider.client_secret_env])
    blob = provider.client_secret_encrypted
    if blob is not None:
        return ClientCredentials(
            provider.client_id, _open_secret(provider, blob, cipher)
        )

    raise _missing_secret(provider, env)


def seal_client_secret(provider: Provider, cipher: Cipher, secret: str) -> None:
    """Encrypt `secret` into `provider.client_secret_encrypted`; the caller saves.

    Raises:
        CredentialsError: The secret is empty or only whitespace.
    """
    if not secret.strip():
        raise CredentialsError(
            f"The client secret for provider {provider.slug!r} is empty; pass the "
            "secret that the provider issued for client "
            f"{provider.client_id or '(no client_id)'}."
        )
    context = provider_context(provider.id)
    provider.client_secret_encrypted = cipher.encrypt(secret.encode(), context)


def _open_secret(provider: Provider, blob: bytes, cipher: Cipher) -> str:
    try:
        plaintext = cipher.decrypt(blob, provider_context(provider.id))
    except DecryptionError as error:
        raise DecryptionError(
            f"The stored client secret of provider {provider.slug!r} does not "
            f"decrypt with the loaded keys (it names key {_key_id(blob, cipher)!r}). "
            "Load that key into the keyring, or store the secret again with "
            f"`linkvault providers set-secret {provider.slug}`."
        ) from error

    try:
        return plaintext.decode()
    except UnicodeDecodeError:
        raise CredentialsError(
            f"The stored client secret of provider {provider.slug!r} is not UTF-8 "
            f"text; store it again with `linkvault providers set-secret "
            f"{provider.slug}`."
        ) from None


def _key_id(blob: bytes, cipher: Cipher) -> str:
    try:
        return cipher.key_id_of(blob)
    except LinkvaultError:
        return "unknown"


def _missing_secret(provider: Provider, env: Mapping[str, str]) -> ConfigurationError:
    slug = provider.slug
    command = f"`linkvault providers set-secret {slug}`"
    variable = provider.client_secret_env
    if variable is None:
        return ConfigurationError(
            f"Provider {slug!r} has no client secret: client_secret_env is not set "
            f"and no secret is stored. Store one with {command}, or set "
            "client_secret_env in its definition and export that variable."
        )

    state = "is empty" if variable in env else "is not set"
    return ConfigurationError(
        f"Provider {slug!r} has no client secret: environment variable "
        f"{variable} {state} and no secret is stored. Export {variable} with the "
        f"secret, or store it encrypted with {command}."
    )
