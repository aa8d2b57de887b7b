"""Sample providers and connections, for the first-run demo and experiments."""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from linkvault.application.credentials import seal_api_key, seal_token_set
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.credentials import ApiKey, TokenSet
from linkvault.domain.provider import Provider
from linkvault.domain.status import ConnectionStatus, CredentialType
from linkvault.domain.token_response import RefreshTokenClock, TokenResponseSettings
from linkvault.ids import new_id
from linkvault.ports.cipher import Cipher
from linkvault.ports.clock import Clock

# Statuses the sample connections end in, with their relative weights.
_STATUS_WEIGHTS = {
    ConnectionStatus.ACTIVE: 14,
    ConnectionStatus.PENDING: 2,
    ConnectionStatus.EXPIRED: 2,
    ConnectionStatus.REVOKED: 1,
    ConnectionStatus.FAILED: 1,
    ConnectionStatus.DISCONNECTED: 1,
}


def sample_providers() -> list[Provider]:
    """Return two OAuth 2.0 providers and one API-key provider on loopback URLs."""
    return [
        Provider(
            id=new_id(),
            slug="sandbox",
            name="Sandbox brokerage",
            credential_type=CredentialType.OAUTH2,
            authorization_url="http://127.0.0.1:8765/authorize",
            token_url="http://127.0.0.1:8765/token",
            revocation_url="http://127.0.0.1:8765/revoke",
            client_id="linkvault-demo",
            client_secret_env="SANDBOX_CLIENT_SECRET",
            scopes=("accounts:read", "positions:read"),
        ),
        Provider(
            id=new_id(),
            slug="schwab-like",
            name="Schwab-shaped brokerage",
            credential_type=CredentialType.OAUTH2,
            authorization_url="http://127.0.0.1:8766/v1/oauth/authorize",
            token_url="http://127.0.0.1:8766/v1/oauth/token",
            client_id="linkvault-demo",
            client_secret_env="SCHWAB_CLIENT_SECRET",
            scopes=("api",),
            token_response=TokenResponseSettings(
                assumed_lifetime=timedelta(minutes=30),
                refresh_token_clock=RefreshTokenClock.FIXED,
                refresh_token_lifetime=timedelta(days=7),
            ),
        ),
        Provider(
            id=new_id(),
            slug="prices-api",
            name="Market prices API",
            credential_type=CredentialType.API_KEY,
        ),
    ]


@dataclass(frozen=True, slots=True)
class SampleConnection:
    connection: ProviderConnection
    # Kept only so the demo can prove the stored bytes do not contain it.
    access_token: str | None


def sample_connections(
    providers: list[Provider],
    users: int,
    cipher: Cipher,
    clock: Clock,
    *,
    seed: int = 7,
) -> list[SampleConnection]:
    """Return 1-3 connections per user across `providers`, in mixed statuses."""
    # Reproducible sample data, not secrets: the tokens come from `secrets`.
    chooser = random.Random(seed)  # noqa: S311
    samples: list[SampleConnection] = []
    for _ in range(users):
        user_id = uuid.UUID(int=chooser.getrandbits(128), version=4)
        for provider in chooser.sample(providers, chooser.randint(1, 3)):
            status = chooser.choices(
                list(_STATUS_WEIGHTS), weights=list(_STATUS_WEIGHTS.values())
            )[0]
            samples.append(_build(provider, user_id, status, cipher, clock, chooser))
    return samples


def _build(
    provider: Provider,
    user_id: uuid.UUID,
    status: ConnectionStatus,
    cipher: Cipher,
    clock: Clock,
    chooser: random.Random,
) -> SampleConnection:
    now = clock.now()
    connection = ProviderConnection.new(
        id=new_id(),
        user_id=user_id,
        provider_id=provider.id,
        provider_slug=provider.slug,
        now=now,
    )
    if status is ConnectionStatus.PENDING:
        return SampleConnection(connection, None)
    if status is ConnectionStatus.FAILED:
        connection.mark_failed(now, "access_denied: the user declined")
        return SampleConnection(connection, None)

    access_token = secrets.token_urlsafe(24)
    if provider.credential_type is CredentialType.API_KEY:
        credentials = seal_api_key(cipher, connection, ApiKey(access_token))
        connection.activate(credentials, now)
    else:
        expires_at = now + timedelta(minutes=chooser.randint(-20, 120))
        tokens = TokenSet(
            access_token=access_token,
            refresh_token=secrets.token_urlsafe(32),
            expires_at=expires_at,
            scopes=provider.scopes,
        )
        connection.activate(
            seal_token_set(cipher, connection, tokens),
            now,
            next_refresh_at=expires_at - timedelta(minutes=5),
        )

    if status is ConnectionStatus.EXPIRED and provider.credential_type.expires:
        connection.mark_expired(now, "invalid_grant: refresh token expired")
    elif status in (ConnectionStatus.REVOKED, ConnectionStatus.EXPIRED):
        connection.mark_revoked(now, "token_revoked: the user revoked access")
    elif status is ConnectionStatus.DISCONNECTED:
        connection.disconnect(now, "the user disconnected")
    return SampleConnection(connection, access_token)
