"""Table definitions shared by the repositories and the Alembic migrations.

Core tables, not ORM classes: the repositories map rows to domain entities
themselves, which keeps the domain free of SQLAlchemy and the hot queries cheap.
"""

from __future__ import annotations

import sqlalchemy as sa

from linkvault.adapters.sqlalchemy.types import UTCDateTime
from linkvault.domain.status import ConnectionStatus, CredentialType

# Named constraints let Alembic compare and alter them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _in_list(column: str, values: list[str]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


STATUSES = [status.value for status in ConnectionStatus]
CREDENTIAL_TYPES = [kind.value for kind in CredentialType]

# Partial indexes compare against this literal. A bound parameter would make
# PostgreSQL's generic plan unable to prove the index predicate.
ACTIVE_PREDICATE = "status = 'active'"

providers = sa.Table(
    "providers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("credential_type", sa.String(32), nullable=False),
    sa.Column("authorization_url", sa.String(2000)),
    sa.Column("token_url", sa.String(2000)),
    sa.Column("revocation_url", sa.String(2000)),
    sa.Column("client_id", sa.String(500)),
    sa.Column("client_secret_env", sa.String(200)),
    sa.Column("client_secret_encrypted", sa.LargeBinary),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("token_endpoint_auth", sa.String(32), nullable=False),
    sa.Column("use_pkce", sa.Boolean, nullable=False),
    sa.Column("extra_authorize_params", sa.JSON, nullable=False),
    sa.Column("refresh_policy", sa.JSON, nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("paused_at", UTCDateTime),
    sa.Column("paused_reason", sa.String(2000)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(
        _in_list("credential_type", CREDENTIAL_TYPES), name="credential_type"
    ),
    sa.CheckConstraint(
        _in_list(
            "token_endpoint_auth",
            ["client_secret_basic", "client_secret_post", "none"],
        ),
        name="token_endpoint_auth",
    ),
)

provider_connections = sa.Table(
    "provider_connections",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    # The host application's user id; linkvault owns no users table.
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column(
        "provider_id",
        sa.Uuid,
        sa.ForeignKey("providers.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    sa.Column("provider_slug", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("alias", sa.String(200)),
    sa.Column("credentials", sa.LargeBinary),
    sa.Column("credential_type", sa.String(32)),
    sa.Column("credentials_expires_at", UTCDateTime),
    sa.Column("refresh_token_expires_at", UTCDateTime),
    sa.Column("connected_at", UTCDateTime),
    sa.Column("authorized_at", UTCDateTime),
    sa.Column("last_sync_at", UTCDateTime),
    sa.Column("next_refresh_at", UTCDateTime),
    sa.Column("refresh_failures", sa.Integer, nullable=False),
    sa.Column("last_refresh_at", UTCDateTime),
    sa.Column("last_refresh_error", sa.String(2000)),
    sa.Column("status_reason", sa.String(2000)),
    # Written only by claim and release, never by save.
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_in_list("status", STATUSES), name="status"),
    sa.CheckConstraint(
        _in_list("credential_type", CREDENTIAL_TYPES), name="credential_type"
    ),
    sa.CheckConstraint(
        "(credentials IS NULL) = (credential_type IS NULL)",
        name="credentials_have_type",
    ),
    sa.CheckConstraint(
        "status <> 'active' OR credentials IS NOT NULL",
        name="active_has_credentials",
    ),
    sa.CheckConstraint(
        "status <> 'disconnected' OR credentials IS NULL",
        name="disconnected_has_no_credentials",
    ),
    sa.CheckConstraint("version >= 1", name="version_positive"),
    sa.CheckConstraint("refresh_failures >= 0", name="refresh_failures_positive"),
    sa.Index("ix_provider_connections_user_provider", "user_id", "provider_id"),
    sa.Index(
        "ix_provider_connections_due",
        "next_refresh_at",
        postgresql_where=sa.text(ACTIVE_PREDICATE),
        sqlite_where=sa.text(ACTIVE_PREDICATE),
    ),
    sa.Index(
        "ix_provider_connections_expiring",
        "credentials_expires_at",
        postgresql_where=sa.text(ACTIVE_PREDICATE),
        sqlite_where=sa.text(ACTIVE_PREDICATE),
    ),
    sa.Index("ix_provider_connections_provider_status", "provider_id", "status"),
)

connection_events = sa.Table(
    "connection_events",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    # No foreign key: the history outlives a hard-deleted connection.
    sa.Column("connection_id", sa.Uuid, nullable=False),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("provider_slug", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(32), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("status_before", sa.String(16)),
    sa.Column("status_after", sa.String(16)),
    sa.Column("reason", sa.String(2000)),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Index("ix_connection_events_connection", "connection_id", "occurred_at"),
    sa.Index("ix_connection_events_occurred", "occurred_at"),
)

oauth_states = sa.Table(
    "oauth_states",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    # SHA-256 of the state value; the value itself is never stored.
    sa.Column("state_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("connection_id", sa.Uuid, nullable=False),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("provider_id", sa.Uuid, nullable=False),
    sa.Column("redirect_uri", sa.String(2000), nullable=False),
    sa.Column("code_verifier_encrypted", sa.LargeBinary),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("consumed_at", UTCDateTime),
    sa.Index("ix_oauth_states_expires", "expires_at"),
)

# The columns that make up a `ProviderConnection`; the lease columns are
# bookkeeping of the refresh workers and are not part of the entity.
LEASE_COLUMNS = frozenset({"lease_owner", "lease_expires_at"})
ENTITY_COLUMNS = [c for c in provider_connections.c if c.name not in LEASE_COLUMNS]
