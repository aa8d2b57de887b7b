"""The benchmarked operations, each as a library side and a raw-driver side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from bench.dataset import ConnectionFactory, RowKey
from bench.measure import Side
from bench.raw import RawDriver, claim_due_values, insert_values, update_values
from linkvault.adapters.clock import FakeClock
from linkvault.adapters.sqlalchemy.bulk import bulk_import
from linkvault.adapters.sqlalchemy.connection_repository import (
    SqlAlchemyConnectionRepository,
)
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.leases import SqlAlchemyLeaseRepository
from linkvault.adapters.sqlalchemy.mapping import connection_to_row
from linkvault.adapters.sqlalchemy.tables import ACTIVE_PREDICATE, provider_connections
from linkvault.domain import ConnectionStatus, ProviderConnection

EXPIRING_MINUTES = 30
EXPIRING_LIMIT = 1000
CLAIM_LIMIT = 100
CLAIM_OWNER = "bench-worker"
CLAIM_LEASE = timedelta(minutes=5)

Repository = SqlAlchemyConnectionRepository
LibraryRead = Callable[[Repository, RowKey], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Counts:
    """How many timed and warm-up iterations each kind of operation gets."""

    reads: int = 2000
    scans: int = 200
    writes: int = 1000
    warmup: int = 100
    bulk_batch: int = 10_000
    bulk_repeats: int = 5


@dataclass(slots=True)
class Context:
    """Everything the operations share within one backend and size."""

    database: Database
    driver: RawDriver
    factory: ConnectionFactory
    clock: FakeClock
    sample: Sequence[RowKey]
    counts: Counts


@dataclass(frozen=True, slots=True)
class Operation:
    """One benchmarked operation.

    `rows` is the number of connections one call inserts (bulk import only).
    `check` compares the ids both sides return before timing starts.
    `cleanup` removes what the writes added or releases what the claim leased.
    `details` are facts about the input, copied into the results.
    """

    name: str
    library: Side
    raw: Side
    iterations: int
    warmup: int
    rows: int | None = None
    check: Callable[[], Awaitable[None]] | None = None
    cleanup: Callable[[], Awaitable[None]] | None = None
    details: dict[str, Any] = field(default_factory=dict)


def read_operations(context: Context) -> list[Operation]:
    """Return the point, per-user and due-scan reads, in run order."""
    statements = context.driver.statements
    reads = context.counts.reads
    horizon = context.clock.now() + timedelta(minutes=EXPIRING_MINUTES)
    return [
        _read(
            context,
            "find_by_id",
            lambda repository, key: repository.find_by_id(key.id),
            statements.find_by_id,
            lambda key: (key.id,),
            reads,
        ),
        _read(
            context,
            "find_by_user_id",
            lambda repository, key: repository.find_by_user_id(key.user_id),
            statements.find_by_user_id,
            lambda key: (key.user_id,),
            reads,
        ),
        _read(
            context,
            "find_active_by_user",
            lambda repository, key: repository.find_active_by_user(key.user_id),
            statements.find_active_by_user,
            lambda key: (key.user_id,),
            reads,
        ),
        _read(
            context,
            "find_by_user_and_provider",
            lambda repository, key: repository.find_by_user_and_provider(
                key.user_id, key.provider_id
            ),
            statements.find_by_user_and_provider,
            lambda key: (key.user_id, key.provider_id),
            reads,
        ),
        _read(
            context,
            "find_expiring_soon",
            lambda repository, _: repository.find_expiring_soon(
                EXPIRING_MINUTES, limit=EXPIRING_LIMIT
            ),
            statements.find_expiring_soon,
            lambda _: (horizon, EXPIRING_LIMIT),
            context.counts.scans,
        ),
    ]


def _read(
    context: Context,
    name: str,
    call: LibraryRead,
    sql: str,
    params_of: Callable[[RowKey], Sequence[Any]],
    iterations: int,
) -> Operation:
    keys = context.sample
    driver = context.driver

    async def pick(index: int) -> RowKey:
        return keys[index % len(keys)]

    async def library(key: RowKey) -> object:
        async with context.database.session(readonly=True) as session:
            return await call(Repository(session, context.clock), key)

    async def raw_params(index: int) -> tuple[Any, ...]:
        return driver.convert(params_of(keys[index % len(keys)]))

    async def raw(params: tuple[Any, ...]) -> list[Any]:
        return await driver.read(sql, params)

    async def check() -> None:
        for index in range(min(20, len(keys))):
            found = _ids(await library(await pick(index)))
            expected = [UUID(str(row[0])) for row in await raw(await raw_params(index))]
            if found != expected:
                raise AssertionError(
                    f"{name}: the library returned {len(found)} rows and the raw "
                    f"driver {len(expected)} for sample {index}; the baseline SQL "
                    "no longer matches the repository's query."
                )

    return Operation(
        name,
        Side(pick, library),
        Side(raw_params, raw),
        iterations,
        context.counts.warmup,
        check=check,
    )


def _ids(result: object) -> list[UUID]:
    if result is None:
        return []
    if isinstance(result, ProviderConnection):
        return [result.id]
    assert isinstance(result, list)
    return [connection.id for connection in result]


async def claim_operation(context: Context) -> Operation:
    """Return the claim of a batch of due connections, as a refresh worker runs it.

    Every call starts from the loaded state: the untimed `prepare` of each
    side releases what the previous call leased, so each call claims the same
    `CLAIM_LIMIT` most urgent connections.
    """
    now, due = await _claim_now(context)
    driver = context.driver
    postgresql = context.database.dialect_name == "postgresql"
    values = claim_due_values(
        CLAIM_OWNER, now, CLAIM_LEASE, CLAIM_LIMIT, postgresql=postgresql
    )
    params = driver.convert(values)
    leases = _Leases(driver)

    async def library_input(index: int) -> None:
        await leases.release()

    async def library(_: None) -> list[ProviderConnection]:
        async with context.database.session() as session:
            claimed = await SqlAlchemyLeaseRepository(session).claim_due(
                owner=CLAIM_OWNER, now=now, lease_for=CLAIM_LEASE, limit=CLAIM_LIMIT
            )
        leases.rows = claimed
        return claimed

    async def raw_input(index: int) -> tuple[Any, ...]:
        await leases.release()
        return params

    async def raw(arguments: tuple[Any, ...]) -> list[Any]:
        rows = await driver.write(driver.statements.claim_due, arguments)
        leases.rows = rows
        return rows

    async def check() -> None:
        await leases.release()
        found = sorted(_ids(await library(None)))
        await leases.release()
        expected = sorted(UUID(str(row[0])) for row in await raw(params))
        await leases.release()
        if found != expected:
            raise AssertionError(
                f"claim_due_batch: the library claimed {len(found)} connections "
                f"and the raw driver {len(expected)}, not the same ones; the "
                "baseline SQL no longer matches `claim_due_statement`."
            )

    return Operation(
        "claim_due_batch",
        Side(library_input, library),
        Side(raw_input, raw),
        context.counts.scans,
        context.counts.warmup,
        check=check,
        cleanup=leases.release,
        details={"now": now.isoformat(), "due": due, "limit": CLAIM_LIMIT},
    )


class _Leases:
    """Rows that the last claim leased, which `release` frees outside the timer."""

    def __init__(self, driver: RawDriver) -> None:
        self._driver = driver
        self.rows: Sequence[Any] = ()

    async def release(self) -> None:
        if not self.rows:
            return
        ids = [
            row.id if isinstance(row, ProviderConnection) else UUID(str(row[0]))
            for row in self.rows
        ]
        self.rows = ()
        await self._driver.release(ids)
        if len(ids) != CLAIM_LIMIT:
            raise AssertionError(
                f"claim_due_batch: a call claimed {len(ids)} connections instead "
                f"of {CLAIM_LIMIT}; a release did not restore the due rows."
            )


async def _claim_now(context: Context) -> tuple[datetime, int]:
    """Return the claim's `now` and how many connections are due by then.

    The claim's `now` is the dataset's now. Datasets below a few thousand rows
    have fewer than `CLAIM_LIMIT` connections due then, so for them it moves
    to the time at which the `CLAIM_LIMIT`-th connection comes due.
    """
    table = provider_connections
    due_at = table.c.next_refresh_at
    active = sa.text(ACTIVE_PREDICATE)
    now = context.clock.now()
    async with context.database.session(readonly=True) as session:
        due = await _count_due(session, now)
        if due < CLAIM_LIMIT:
            later = await session.scalar(
                sa.select(due_at)
                .where(active, due_at.is_not(None))
                .order_by(due_at)
                .offset(CLAIM_LIMIT - 1)
                .limit(1)
            )
            if later is None:
                raise ValueError(
                    f"Fewer than {CLAIM_LIMIT} active connections have a "
                    "refresh scheduled, so a claim cannot take a full batch; "
                    "use a larger --size."
                )
            now = later
            due = await _count_due(session, now)
    return now, due


async def _count_due(session: AsyncSession, now: datetime) -> int:
    table = provider_connections
    statement = (
        sa.select(sa.func.count())
        .select_from(table)
        .where(sa.text(ACTIVE_PREDICATE), table.c.next_refresh_at <= now)
    )
    return int((await session.execute(statement)).scalar_one())


async def write_operations(context: Context) -> list[Operation]:
    """Return the update, insert and bulk-import operations, in run order."""
    return [
        await _save_update(context),
        _save_new(context),
        _bulk_import(context),
    ]


async def _save_update(context: Context) -> Operation:
    """Store rotated credentials, as a refresh does; each side has its own rows."""
    needed = context.counts.writes + context.counts.warmup
    active = [key for key in context.sample if key.status is ConnectionStatus.ACTIVE]
    mine = await _load(context, active[0::2][:needed])
    theirs = await _load(context, active[1::2][:needed])
    if not mine or not theirs:
        raise ValueError(
            f"The sample of {len(context.sample)} rows contains fewer than two active "
            "connections to update; use a larger --size."
        )
    driver = context.driver

    async def library_input(index: int) -> ProviderConnection:
        return _rotate(context, mine[index % len(mine)])

    async def raw_input(index: int) -> tuple[ProviderConnection, tuple[Any, ...]]:
        connection = _rotate(context, theirs[index % len(theirs)])
        values = update_values(connection_to_row(connection), connection.version)
        return connection, driver.convert(values)

    async def raw(argument: tuple[ProviderConnection, tuple[Any, ...]]) -> None:
        connection, params = argument
        rows = await driver.write(driver.statements.update, params)
        connection.version = rows[0][0]

    return Operation(
        "save_update",
        Side(library_input, _library_save(context)),
        Side(raw_input, raw),
        context.counts.writes,
        context.counts.warmup,
    )


def _save_new(context: Context) -> Operation:
    needed = context.counts.writes + context.counts.warmup
    factory = context.factory
    active = ConnectionStatus.ACTIVE
    mine = [factory.connection(active, new_user=True) for _ in range(needed)]
    theirs = [factory.connection(active, new_user=True) for _ in range(needed)]
    driver = context.driver

    async def library_input(index: int) -> ProviderConnection:
        return mine[index]

    async def raw_input(index: int) -> tuple[Any, ...]:
        return driver.convert(insert_values(connection_to_row(theirs[index])))

    async def raw(params: tuple[Any, ...]) -> None:
        rows = await driver.write(driver.statements.insert, params)
        assert rows, "the raw insert met an existing id"

    async def cleanup() -> None:
        await driver.delete([connection.id for connection in mine + theirs])

    return Operation(
        "save_new",
        Side(library_input, _library_save(context)),
        Side(raw_input, raw),
        context.counts.writes,
        context.counts.warmup,
        cleanup=cleanup,
    )


def _bulk_import(context: Context) -> Operation:
    """Import one batch of new connections; both sides insert the same rows."""
    batch = [context.factory.connection() for _ in range(context.counts.bulk_batch)]
    ids = [connection.id for connection in batch]
    driver = context.driver
    records = [
        driver.convert(insert_values(connection_to_row(connection)))
        for connection in batch
    ]

    async def library_input(index: int) -> list[ProviderConnection]:
        await driver.delete(ids)
        for connection in batch:
            connection.version = 0
        return batch

    async def library(connections: list[ProviderConnection]) -> None:
        await bulk_import(context.database, connections)

    async def raw_input(index: int) -> list[tuple[Any, ...]]:
        await driver.delete(ids)
        return records

    async def cleanup() -> None:
        await driver.delete(ids)

    return Operation(
        "bulk_import",
        Side(library_input, library),
        Side(raw_input, driver.copy),
        context.counts.bulk_repeats,
        1,
        rows=len(batch),
        cleanup=cleanup,
    )


def _library_save(context: Context) -> Callable[[Any], Awaitable[None]]:
    async def save(connection: ProviderConnection) -> None:
        async with context.database.session() as session:
            await Repository(session, context.clock).save(connection)

    return save


def _rotate(context: Context, connection: ProviderConnection) -> ProviderConnection:
    now = context.clock.now()
    credentials = context.factory.rotated_credentials(connection)
    next_refresh_at = None
    if credentials.expires_at is not None:
        next_refresh_at = credentials.expires_at - timedelta(minutes=12)
    connection.replace_credentials(credentials, now, next_refresh_at=next_refresh_at)
    return connection


async def _load(context: Context, keys: Sequence[RowKey]) -> list[ProviderConnection]:
    async with context.database.session(readonly=True) as session:
        repository = Repository(session, context.clock)
        found = [await repository.find_by_id(key.id) for key in keys]
    return [connection for connection in found if connection is not None]
