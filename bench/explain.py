"""Query plans of the SQL the repository really sends.

Each read and the claim run once through the library with a cursor listener,
which records the compiled statement and its parameters as the driver
receives them. The raw driver then explains that statement: EXPLAIN ANALYZE
of the generic plan on PostgreSQL (a prepared statement under
`plan_cache_mode = force_generic_plan`, as a cached statement ends up after
five executions), and EXPLAIN QUERY PLAN on SQLite.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from bench.operations import Operation
from bench.raw import RawDriver
from linkvault.adapters.sqlalchemy.database import Database

# Statements whose plan is recorded, unlike BEGIN and COMMIT.
_EXPLAINED = ("SELECT", "UPDATE")


async def explain(
    database: Database, driver: RawDriver, operations: list[Operation]
) -> dict[str, dict[str, Any]]:
    """Return, per operation, the library's SQL and its plan lines."""
    plans = {}
    for operation in operations:
        sql, params = await _capture(database, operation)
        plans[operation.name] = {
            "library_sql": sql,
            "plan": await driver.explain(sql, params),
        }
    return plans


async def _capture(database: Database, operation: Operation) -> tuple[str, Any]:
    captured: list[tuple[str, Any]] = []

    def listener(
        _connection: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if statement.lstrip().upper().startswith(_EXPLAINED):
            captured.append((statement, parameters))

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        await operation.library.run(await operation.library.prepare(0))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    if operation.cleanup is not None:
        await operation.cleanup()

    if len(captured) != 1:
        raise RuntimeError(
            f"{operation.name} sent {len(captured)} SELECT or UPDATE statements "
            "instead of one, so its plan cannot be recorded; explain each one "
            "separately."
        )
    return captured[0]
