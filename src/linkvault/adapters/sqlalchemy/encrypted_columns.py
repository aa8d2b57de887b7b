"""Every column of keyring blobs, as `EncryptedColumn`s that rewrap can walk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.tables import (
    oauth_states,
    provider_connections,
    providers,
)
from linkvault.ports.cipher import (
    connection_context,
    oauth_state_context,
    provider_context,
)
from linkvault.ports.repositories import EncryptedValue

# Builds the associated data from the row id and the extra context column.
_ContextOf = Callable[[UUID, Any], bytes]


class SqlEncryptedColumn:
    """One blob column of one table, scanned by primary key in batches.

    Each call runs in its own short transaction, so a long rewrap never holds
    locks that a refresh worker waits for. `swap` compares the blob it read,
    so a row rewritten meanwhile (a refresh that stored new credentials) is
    left alone. It does not bump `version`, because a worker saving freshly
    rotated tokens concurrently would otherwise fail as stale.
    """

    def __init__(
        self,
        database: Database,
        table: sa.Table,
        blob_column: str,
        context_column: str | None,
        context_of: _ContextOf,
    ) -> None:
        self._database = database
        self._table = table
        self._blob = table.c[blob_column]
        # A second column the context needs (user_id for connections).
        self._extra = table.c[context_column] if context_column else table.c.id
        self._context_of = context_of

    @property
    def name(self) -> str:
        return f"{self._table.name}.{self._blob.name}"

    async def scan(self, after: str | None, limit: int) -> list[EncryptedValue]:
        table = self._table
        statement = (
            sa.select(table.c.id, self._blob, self._extra)
            .where(self._blob.is_not(None))
            .order_by(table.c.id)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(table.c.id > UUID(after))
        async with self._database.session(readonly=True) as session:
            rows = (await session.execute(statement)).all()
        return [
            EncryptedValue(str(row_id), blob, self._context_of(row_id, extra))
            for row_id, blob, extra in rows
        ]

    async def count(self) -> int:
        """Return how many rows hold a blob, for progress displays."""
        statement = (
            sa.select(sa.func.count())
            .select_from(self._table)
            .where(self._blob.is_not(None))
        )
        async with self._database.session(readonly=True) as session:
            return int((await session.execute(statement)).scalar_one())

    async def swap(self, row_key: str, old: bytes, new: bytes) -> bool:
        statement = (
            sa.update(self._table)
            .where(self._table.c.id == UUID(row_key), self._blob == old)
            .values({self._blob.name: new})
        )
        async with self._database.session() as session:
            result = await session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]


def encrypted_columns(database: Database) -> list[SqlEncryptedColumn]:
    """Return every keyring-encrypted column of the schema."""
    return [
        SqlEncryptedColumn(
            database,
            provider_connections,
            "credentials",
            "user_id",
            connection_context,
        ),
        SqlEncryptedColumn(
            database,
            providers,
            "client_secret_encrypted",
            None,
            lambda row_id, _: provider_context(row_id),
        ),
        SqlEncryptedColumn(
            database,
            oauth_states,
            "code_verifier_encrypted",
            None,
            lambda row_id, _: oauth_state_context(row_id),
        ),
    ]
