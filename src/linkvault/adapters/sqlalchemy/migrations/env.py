"""Alembic environment: runs migrations on a passed-in connection or a URL.

Tests and the `linkvault db upgrade` command pass an open connection in
`config.attributes["connection"]`, so migrations run inside their event loop.
The `alembic` command line reads the URL from `sqlalchemy.url` or from the
LINKVAULT_DATABASE_URL environment variable.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.tables import metadata

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_url(url: str) -> None:
    database = Database.from_url(url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await database.dispose()


def database_url() -> str:
    url = os.environ.get("LINKVAULT_DATABASE_URL") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit(
            "No database URL: set LINKVAULT_DATABASE_URL or pass "
            "-x/--config with sqlalchemy.url."
        )
    return url


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    asyncio.run(run_with_url(database_url()))


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported.")
main()
