"""Raw-driver baselines: the repository's statements through asyncpg or aiosqlite.

The SQL is written out from the table definition with the driver's own
placeholders. It selects the same columns with the same predicates, order,
limit and RETURNING clause as the statements the repository compiles, and the
run records both texts. Each call runs in the transaction mode of the matching
library scope: BEGIN, the statement, COMMIT, where SQLite write scopes use
`BEGIN IMMEDIATE` and read scopes `BEGIN DEFERRED`. Parameters arrive already
converted to what the driver takes; converting them is not timed.
"""

# The SQL is assembled from the table definition, never from input.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import aiosqlite
import asyncpg  # type: ignore[import-untyped]

from linkvault.adapters.sqlalchemy.database import SQLITE_BUSY_TIMEOUT_MS
from linkvault.adapters.sqlalchemy.tables import provider_connections, providers

TABLE = provider_connections.name
PROVIDERS = providers.name
LEASE_COLUMNS = ("lease_owner", "lease_expires_at")
# Every column the repository reads, in table order.
COLUMNS = tuple(c.name for c in provider_connections.c if c.name not in LEASE_COLUMNS)
# The columns `save` writes besides `version`, in table order.
WRITE_COLUMNS = tuple(name for name in COLUMNS if name != "version")
UNCHANGED_ON_UPDATE = ("id", "created_at")
UPDATE_COLUMNS = tuple(c for c in WRITE_COLUMNS if c not in UNCHANGED_ON_UPDATE)
# The order of `find_by_user_id` and the other per-user lists.
USER_ORDER = "ORDER BY created_at, id"
# The order in which `claim_due` takes due connections, most urgent first.
DUE_ORDER = "ORDER BY next_refresh_at, id"


@dataclass(frozen=True, slots=True)
class Statements:
    """The SQL of each benchmarked operation in one placeholder style."""

    find_by_id: str
    find_by_user_id: str
    find_by_user_and_provider: str
    find_active_by_user: str
    find_expiring_soon: str
    claim_due: str
    update: str
    insert: str


def build_statements(
    mark: Callable[[int], str], *, postgresql: bool = False
) -> Statements:
    """Write the statements with `mark(n)` as the n-th placeholder (from 1).

    With `postgresql`, the claim locks the due rows with FOR UPDATE SKIP
    LOCKED. SQLite has no row locks, so its claim has no locking clause.
    """
    select = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}"
    return Statements(
        find_by_id=f"{select} WHERE id = {mark(1)}",
        find_by_user_id=f"{select} WHERE user_id = {mark(1)} {USER_ORDER}",
        find_by_user_and_provider=(
            f"{select} WHERE user_id = {mark(1)} AND provider_id = {mark(2)} "
            f"{USER_ORDER}"
        ),
        find_active_by_user=(
            f"{select} WHERE user_id = {mark(1)} AND status = 'active' {USER_ORDER}"
        ),
        find_expiring_soon=(
            f"{select} WHERE status = 'active' "
            f"AND credentials_expires_at <= {mark(1)} "
            f"ORDER BY credentials_expires_at, id LIMIT {mark(2)}"
        ),
        claim_due=_claim_due(mark, postgresql=postgresql),
        update=_update(mark),
        insert=_insert(mark),
    )


def _claim_due(mark: Callable[[int], str], *, postgresql: bool) -> str:
    if postgresql:
        limit = f"LIMIT {mark(5)} FOR UPDATE SKIP LOCKED"
    else:
        # SQLAlchemy's SQLite compiler always follows LIMIT with OFFSET.
        limit = f"LIMIT {mark(5)} OFFSET {mark(6)}"
    due = (
        f"SELECT id FROM {TABLE} WHERE status = 'active' "
        f"AND next_refresh_at <= {mark(3)} "
        f"AND (lease_expires_at IS NULL OR lease_expires_at <= {mark(4)}) "
        f"AND provider_id NOT IN (SELECT id FROM {PROVIDERS} "
        "WHERE paused_at IS NOT NULL) "
        f"{DUE_ORDER} {limit}"
    )
    return (
        f"UPDATE {TABLE} SET lease_owner = {mark(1)}, lease_expires_at = {mark(2)} "
        f"WHERE id IN ({due}) RETURNING {', '.join(COLUMNS)}"
    )


def _update(mark: Callable[[int], str]) -> str:
    assignments = [f"{name} = {mark(n)}" for n, name in enumerate(UPDATE_COLUMNS, 1)]
    where = len(UPDATE_COLUMNS) + 1
    return (
        f"UPDATE {TABLE} SET {', '.join(assignments)}, version = version + 1 "
        f"WHERE id = {mark(where)} AND version = {mark(where + 1)} "
        "RETURNING version"
    )


def _insert(mark: Callable[[int], str]) -> str:
    columns = (*WRITE_COLUMNS, "version")
    values = ", ".join(mark(n) for n in range(1, len(columns) + 1))
    return (
        f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({values}) "
        "ON CONFLICT (id) DO NOTHING RETURNING version"
    )


def update_values(row: dict[str, Any], version: int) -> list[Any]:
    """Return the parameters of `Statements.update` from a `save` row."""
    return [row[name] for name in UPDATE_COLUMNS] + [row["id"], version]


def insert_values(row: dict[str, Any]) -> list[Any]:
    """Return the parameters of `Statements.insert` from a `save` row."""
    return [row[name] for name in WRITE_COLUMNS] + [1]


def claim_due_values(
    owner: str, now: datetime, lease_for: timedelta, limit: int, *, postgresql: bool
) -> list[Any]:
    """Return the parameters of `Statements.claim_due`, as `claim_due` binds them."""
    values: list[Any] = [owner, now + lease_for, now, now, limit]
    return values if postgresql else [*values, 0]


class RawDriver(Protocol):
    """A raw driver connection that runs the baseline statements."""

    statements: Statements

    def convert(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """Turn Python values into the driver's parameter values."""
        ...

    async def read(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

    async def write(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

    async def copy(self, records: list[tuple[Any, ...]]) -> None:
        """Insert `records` (all of `WRITE_COLUMNS`, then version) in one go."""
        ...

    async def delete(self, ids: Sequence[UUID]) -> None: ...

    async def release(self, ids: Sequence[UUID]) -> None:
        """Clear the lease columns of the connections `ids`."""
        ...

    async def analyze(self) -> None: ...

    async def explain(self, sql: str, params: Sequence[Any]) -> list[str]: ...

    async def close(self) -> None: ...


class PostgresDriver:
    """asyncpg on its own connection, with the engine's session settings."""

    statements = build_statements(lambda n: f"${n}", postgresql=True)

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @classmethod
    async def connect(cls, dsn: str, schema: str) -> PostgresDriver:
        settings = {"search_path": schema, "timezone": "UTC"}
        connection = await asyncpg.connect(dsn, server_settings=settings)
        return cls(connection)

    def convert(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(values)

    async def read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        async with self._connection.transaction():
            rows: list[Any] = await self._connection.fetch(sql, *params)
        return rows

    async def write(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return await self.read(sql, params)

    async def copy(self, records: list[tuple[Any, ...]]) -> None:
        columns = [*WRITE_COLUMNS, "version"]
        async with self._connection.transaction():
            await self._connection.copy_records_to_table(
                TABLE, records=records, columns=columns
            )

    async def delete(self, ids: Sequence[UUID]) -> None:
        sql = f"DELETE FROM {TABLE} WHERE id = ANY($1::uuid[])"
        await self._connection.execute(sql, list(ids))

    async def release(self, ids: Sequence[UUID]) -> None:
        sql = (
            f"UPDATE {TABLE} SET lease_owner = NULL, lease_expires_at = NULL "
            "WHERE id = ANY($1::uuid[])"
        )
        await self._connection.execute(sql, list(ids))

    async def analyze(self) -> None:
        # VACUUM also sets the visibility map, so autovacuum has nothing left
        # to do on the freshly loaded table while the timings run.
        await self._connection.execute(f"VACUUM (ANALYZE) {TABLE}")

    async def explain(self, sql: str, params: Sequence[Any]) -> list[str]:
        """Return EXPLAIN ANALYZE of the generic plan of `sql`.

        EXPLAIN ANALYZE runs the statement, so it runs in a transaction that
        is rolled back, and explaining the claim leases no rows.
        """
        connection = self._connection
        literals = ", ".join(_pg_literal(value) for value in params)
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE lv_bench_plan AS {sql}")
        transaction = connection.transaction()
        await transaction.start()
        try:
            rows = await connection.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE lv_bench_plan({literals})"
            )
        finally:
            await transaction.rollback()
            await connection.execute("DEALLOCATE lv_bench_plan")
            await connection.execute("RESET plan_cache_mode")
        return [row[0] for row in rows]

    async def server_version(self) -> str:
        version: str = await self._connection.fetchval("SHOW server_version")
        return version

    async def close(self) -> None:
        await self._connection.close()


def _pg_literal(value: Any) -> str:
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, datetime):
        value = value.isoformat()
    text = str(value).replace("'", "''")
    return f"'{text}'"


class SqliteDriver:
    """aiosqlite on its own connection, with the engine's PRAGMAs."""

    statements = build_statements(lambda n: "?")

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    @classmethod
    async def connect(cls, path: Path) -> SqliteDriver:
        connection = await aiosqlite.connect(path, isolation_level=None)
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
            "synchronous=NORMAL",
        ):
            await connection.execute_fetchall(f"PRAGMA {pragma}")
        return cls(connection)

    def convert(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(sqlite_value(value) for value in values)

    async def read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return await self._in_transaction("BEGIN DEFERRED", sql, params)

    async def write(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return await self._in_transaction("BEGIN IMMEDIATE", sql, params)

    async def copy(self, records: list[tuple[Any, ...]]) -> None:
        columns = (*WRITE_COLUMNS, "version")
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({marks})"
        connection = self._connection
        await connection.execute_fetchall("BEGIN IMMEDIATE")
        try:
            await connection.executemany(sql, records)
        except BaseException:
            await connection.rollback()
            raise
        await connection.commit()

    async def delete(self, ids: Sequence[UUID]) -> None:
        sql = f"DELETE FROM {TABLE} WHERE id = ?"
        await self._connection.execute_fetchall("BEGIN IMMEDIATE")
        await self._connection.executemany(sql, [(i.hex,) for i in ids])
        await self._connection.commit()

    async def release(self, ids: Sequence[UUID]) -> None:
        sql = (
            f"UPDATE {TABLE} SET lease_owner = NULL, lease_expires_at = NULL "
            "WHERE id = ?"
        )
        await self._connection.execute_fetchall("BEGIN IMMEDIATE")
        await self._connection.executemany(sql, [(i.hex,) for i in ids])
        await self._connection.commit()

    async def analyze(self) -> None:
        await self._connection.execute_fetchall("ANALYZE")

    async def explain(self, sql: str, params: Sequence[Any]) -> list[str]:
        """Return EXPLAIN QUERY PLAN of `sql`, one line per plan step."""
        rows = await self._connection.execute_fetchall(
            f"EXPLAIN QUERY PLAN {sql}", params
        )
        return [str(row[3]) for row in rows]

    async def close(self) -> None:
        await self._connection.close()

    async def _in_transaction(
        self, begin: str, sql: str, params: Sequence[Any]
    ) -> list[Any]:
        connection = self._connection
        await connection.execute_fetchall(begin)
        try:
            rows = list(await connection.execute_fetchall(sql, params))
        except BaseException:
            await connection.rollback()
            raise
        await connection.commit()
        return rows


def sqlite_value(value: Any) -> Any:
    """Convert a value the way linkvault's column types store it on SQLite.

    UUIDs become 32 hexadecimal digits (SQLAlchemy's `Uuid` without a native
    type); datetimes become naive UTC text in SQLAlchemy's SQLite format.
    """
    if isinstance(value, UUID):
        return value.hex
    if isinstance(value, datetime):
        utc = value.astimezone(UTC)
        return (
            f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
            f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}"
        )
    return value
