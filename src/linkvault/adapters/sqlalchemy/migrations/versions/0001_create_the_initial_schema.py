"""Create the initial schema.

Revision ID: 0001
Revises:
Create Date: 2026-12-04 16:21:30.716148
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import linkvault.adapters.sqlalchemy.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connection_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("provider_slug", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column(
            "occurred_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("status_before", sa.String(length=16), nullable=True),
        sa.Column("status_after", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_events")),
    )
    with op.batch_alter_table("connection_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_connection_events_connection",
            ["connection_id", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_connection_events_occurred", ["occurred_at"], unique=False
        )

    op.create_table(
        "oauth_states",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("code_verifier_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "expires_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "consumed_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oauth_states_state_hash")),
    )
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.create_index("ix_oauth_states_expires", ["expires_at"], unique=False)

    op.create_table(
        "providers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("credential_type", sa.String(length=32), nullable=False),
        sa.Column("authorization_url", sa.String(length=2000), nullable=True),
        sa.Column("token_url", sa.String(length=2000), nullable=True),
        sa.Column("revocation_url", sa.String(length=2000), nullable=True),
        sa.Column("client_id", sa.String(length=500), nullable=True),
        sa.Column("client_secret_env", sa.String(length=200), nullable=True),
        sa.Column("client_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("token_endpoint_auth", sa.String(length=32), nullable=False),
        sa.Column("use_pkce", sa.Boolean(), nullable=False),
        sa.Column("extra_authorize_params", sa.JSON(), nullable=False),
        sa.Column("refresh_policy", sa.JSON(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column(
            "paused_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("paused_reason", sa.String(length=2000), nullable=True),
        sa.Column(
            "created_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.CheckConstraint(
            "credential_type IN ('oauth2', 'api_key', 'link_token', 'certificate', "
            "'file_import', 'custom')",
            name=op.f("ck_providers_credential_type"),
        ),
        sa.CheckConstraint(
            "token_endpoint_auth IN "
            "('client_secret_basic', 'client_secret_post', 'none')",
            name=op.f("ck_providers_token_endpoint_auth"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
        sa.UniqueConstraint("slug", name=op.f("uq_providers_slug")),
    )
    op.create_table(
        "provider_connections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("provider_slug", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("alias", sa.String(length=200), nullable=True),
        sa.Column("credentials", sa.LargeBinary(), nullable=True),
        sa.Column("credential_type", sa.String(length=32), nullable=True),
        sa.Column(
            "credentials_expires_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "refresh_token_expires_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "connected_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "authorized_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "last_sync_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "next_refresh_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("refresh_failures", sa.Integer(), nullable=False),
        sa.Column(
            "last_refresh_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("last_refresh_error", sa.String(length=2000), nullable=True),
        sa.Column("status_reason", sa.String(length=2000), nullable=True),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column(
            "lease_expires_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            linkvault.adapters.sqlalchemy.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.CheckConstraint(
            "credential_type IN ('oauth2', 'api_key', 'link_token', 'certificate', "
            "'file_import', 'custom')",
            name=op.f("ck_provider_connections_credential_type"),
        ),
        sa.CheckConstraint(
            "status <> 'active' OR credentials IS NOT NULL",
            name=op.f("ck_provider_connections_active_has_credentials"),
        ),
        sa.CheckConstraint(
            "status <> 'disconnected' OR credentials IS NULL",
            name=op.f("ck_provider_connections_disconnected_has_no_credentials"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'expired', 'revoked', 'failed', "
            "'disconnected')",
            name=op.f("ck_provider_connections_status"),
        ),
        sa.CheckConstraint(
            "(credentials IS NULL) = (credential_type IS NULL)",
            name=op.f("ck_provider_connections_credentials_have_type"),
        ),
        sa.CheckConstraint(
            "refresh_failures >= 0",
            name=op.f("ck_provider_connections_refresh_failures_positive"),
        ),
        sa.CheckConstraint(
            "version >= 1", name=op.f("ck_provider_connections_version_positive")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_provider_connections_provider_id_providers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_connections")),
    )
    with op.batch_alter_table("provider_connections", schema=None) as batch_op:
        batch_op.create_index(
            "ix_provider_connections_due",
            ["next_refresh_at"],
            unique=False,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )
        batch_op.create_index(
            "ix_provider_connections_expiring",
            ["credentials_expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )
        batch_op.create_index(
            "ix_provider_connections_provider_status",
            ["provider_id", "status"],
            unique=False,
        )
        batch_op.create_index(
            "ix_provider_connections_user_provider",
            ["user_id", "provider_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("provider_connections", schema=None) as batch_op:
        batch_op.drop_index("ix_provider_connections_user_provider")
        batch_op.drop_index("ix_provider_connections_provider_status")
        batch_op.drop_index(
            "ix_provider_connections_expiring",
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(
            "ix_provider_connections_due",
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )

    op.drop_table("provider_connections")
    op.drop_table("providers")
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.drop_index("ix_oauth_states_expires")

    op.drop_table("oauth_states")
    with op.batch_alter_table("connection_events", schema=None) as batch_op:
        batch_op.drop_index("ix_connection_events_occurred")
        batch_op.drop_index("ix_connection_events_connection")

    op.drop_table("connection_events")
