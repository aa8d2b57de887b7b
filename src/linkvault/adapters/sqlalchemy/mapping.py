"""Conversions between table rows and domain entities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping

from linkvault.domain.connection import ProviderConnection
from linkvault.domain.credentials import ProviderCredentials
from linkvault.domain.events import ConnectionEvent
from linkvault.domain.status import ConnectionStatus, CredentialType


def connection_to_row(connection: ProviderConnection) -> dict[str, Any]:
    """Return the column values `save` writes; lease columns are never included."""
    credentials = connection.credentials
    return {
        "id": connection.id,
        "user_id": connection.user_id,
        "provider_id": connection.provider_id,
        "provider_slug": connection.provider_slug,
        "status": connection.status.value,
        "alias": connection.alias,
        "credentials": credentials.encrypted_data if credentials else None,
        "credential_type": credentials.credential_type.value if credentials else None,
        "credentials_expires_at": credentials.expires_at if credentials else None,
        "refresh_token_expires_at": connection.refresh_token_expires_at,
        "connected_at": connection.connected_at,
        "authorized_at": connection.authorized_at,
        "last_sync_at": connection.last_sync_at,
        "next_refresh_at": connection.next_refresh_at,
        "refresh_failures": connection.refresh_failures,
        "last_refresh_at": connection.last_refresh_at,
        "last_refresh_error": connection.last_refresh_error,
        "status_reason": connection.status_reason,
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
    }


def row_to_connection(row: RowMapping) -> ProviderConnection:
    credentials = None
    if row["credentials"] is not None:
        credentials = ProviderCredentials(
            encrypted_data=row["credentials"],
            credential_type=CredentialType(row["credential_type"]),
            expires_at=row["credentials_expires_at"],
        )
    return ProviderConnection(
        id=row["id"],
        user_id=row["user_id"],
        provider_id=row["provider_id"],
        provider_slug=row["provider_slug"],
        status=ConnectionStatus(row["status"]),
        alias=row["alias"],
        credentials=credentials,
        connected_at=row["connected_at"],
        authorized_at=row["authorized_at"],
        last_sync_at=row["last_sync_at"],
        next_refresh_at=row["next_refresh_at"],
        refresh_failures=row["refresh_failures"],
        last_refresh_at=row["last_refresh_at"],
        last_refresh_error=row["last_refresh_error"],
        status_reason=row["status_reason"],
        refresh_token_expires_at=row["refresh_token_expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


def event_to_row(event: ConnectionEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "connection_id": event.connection_id,
        "user_id": event.user_id,
        "provider_slug": event.provider_slug,
        "event_type": event.event_type.value,
        "occurred_at": event.occurred_at,
        "actor": event.actor,
        "status_before": event.status_before,
        "status_after": event.status_after,
        "reason": event.reason,
        "details": dict(event.details),
    }


def row_to_event(row: RowMapping) -> ConnectionEvent:
    return ConnectionEvent(
        id=row["id"],
        connection_id=row["connection_id"],
        user_id=row["user_id"],
        provider_slug=row["provider_slug"],
        event_type=row["event_type"],
        occurred_at=row["occurred_at"],
        actor=row["actor"],
        status_before=row["status_before"],
        status_after=row["status_after"],
        reason=row["reason"],
        details=dict(row["details"]),
    )
