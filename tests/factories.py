"""Builders of domain objects for tests, with sensible defaults."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.tables import metadata
from linkvault.domain import (
    ConnectionStatus,
    CredentialType,
    Provider,
    ProviderConnection,
    ProviderCredentials,
)
from linkvault.ids import new_id


def make_provider(slug: str = "sandbox", **overrides: object) -> Provider:
    fields: dict[str, object] = {
        "id": new_id(),
        "slug": slug,
        "name": slug.title(),
        "credential_type": CredentialType.OAUTH2,
        "authorization_url": "http://127.0.0.1:9/authorize",
        "token_url": "http://127.0.0.1:9/token",
        "client_id": f"{slug}-client",
        "client_secret_env": f"{slug.upper().replace('-', '_')}_CLIENT_SECRET",
        "scopes": ("read",),
    }
    fields.update(overrides)
    return Provider(**fields)  # type: ignore[arg-type]


def make_credentials(
    expires_at: datetime | None,
    credential_type: CredentialType = CredentialType.OAUTH2,
    data: bytes = b"ciphertext-placeholder",
) -> ProviderCredentials:
    return ProviderCredentials(
        encrypted_data=data, credential_type=credential_type, expires_at=expires_at
    )


def make_connection(
    provider: Provider,
    now: datetime,
    *,
    user_id: uuid.UUID | None = None,
    status: ConnectionStatus = ConnectionStatus.ACTIVE,
    expires_in: timedelta | None = timedelta(hours=1),
    created_at: datetime | None = None,
    alias: str | None = None,
) -> ProviderConnection:
    """Build a connection in `status`, going through the lifecycle methods."""
    connection = ProviderConnection.new(
        id=new_id(),
        user_id=user_id or uuid.uuid4(),
        provider_id=provider.id,
        provider_slug=provider.slug,
        now=created_at or now,
        alias=alias,
    )
    if status is ConnectionStatus.PENDING:
        return connection
    if status is ConnectionStatus.FAILED:
        connection.mark_failed(now, "access_denied")
        return connection
    if status is ConnectionStatus.DISCONNECTED:
        connection.disconnect(now)
        return connection

    expires_at = None if expires_in is None else now + expires_in
    connection.activate(make_credentials(expires_at), now)
    if status is ConnectionStatus.EXPIRED:
        connection.mark_expired(now, "invalid_grant")
    elif status is ConnectionStatus.REVOKED:
        connection.mark_revoked(now, "token_revoked")
    return connection


async def empty_tables(database: Database) -> None:
    """Delete every row of every linkvault table, children first."""
    async with database.session() as session:
        for table in reversed(metadata.sorted_tables):
            await session.execute(table.delete())
