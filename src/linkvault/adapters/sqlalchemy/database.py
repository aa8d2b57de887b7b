"""Engine set-up and transactional session scopes for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolResetState

from linkvault.domain.errors import ConfigurationError, DatabaseUnavailableError

logger = logging.getLogger(__name__)

_BEGIN_OPTION = "linkvault_sqlite_begin"
_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}

# Seconds a SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000


class Database:
    """An async engine plus the session scopes every repository runs in.

    `async with database.session() as session:` commits on a clean exit and
    rolls back on an error. On SQLite a write scope starts with
    `BEGIN IMMEDIATE`, so two writers queue on the busy timeout instead of
    failing when a read lock cannot be upgraded.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = async_sessionmaker(engine, expire_on_commit=False)
        reader = engine.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
        self._reader = async_sessionmaker(reader, expire_on_commit=False)

    @classmethod
    def from_url(
        cls,
        url: str | URL,
        *,
        echo: bool = False,
        connect_args: dict[str, Any] | None = None,
        **engine_options: Any,
    ) -> Database:
        """Build the engine for a SQLite or PostgreSQL URL.

        Plain `sqlite://` and `postgresql://` URLs get the async drivers
        (aiosqlite, asyncpg). Statement parameters are never logged, because
        they include encrypted credentials and token hashes.
        """
        parsed = _with_async_driver(make_url(url))
        args = dict(connect_args or {})
        if parsed.get_backend_name() == "postgresql":
            settings = args.setdefault("server_settings", {})
            settings.setdefault("timezone", "UTC")
            # These queries are short. Once a prepared claim switches to its
            # generic plan, JIT compiles it on every call: 24-36 ms at a
            # million rows against 1.5 ms for the query (BENCHMARKS.md).
            settings.setdefault("jit", "off")
        else:
            # The "reset" hook below rolls back only what is still open.
            engine_options.setdefault("pool_reset_on_return", None)

        engine = create_async_engine(
            parsed,
            echo=echo,
            hide_parameters=True,
            connect_args=args,
            **engine_options,
        )
        if parsed.get_backend_name() == "sqlite":
            _configure_sqlite(engine)
        return cls(engine)

    @property
    def dialect_name(self) -> str:
        return self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    @asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        """Open a transaction scope: commit on clean exit, roll back on error."""
        factory = self._reader if readonly else self._writer
        try:
            async with factory() as session, session.begin():
                yield session
        except (exc.OperationalError, exc.InterfaceError, OSError) as error:
            raise self._unavailable(error) from error

    async def check(self) -> None:
        """Run a trivial query; raises `DatabaseUnavailableError` if it fails."""
        async with self.session(readonly=True) as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    def _unavailable(self, error: BaseException) -> DatabaseUnavailableError:
        cause = getattr(error, "orig", None) or error
        return DatabaseUnavailableError(
            f"Database {self.safe_url} is unavailable or refused the operation "
            f"({type(cause).__name__}: {_first_line(cause)}). Check that the "
            "server is running and the URL (LINKVAULT_DATABASE_URL) is right."
        )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "no detail"


def _with_async_driver(url: URL) -> URL:
    backend = url.get_backend_name()
    if backend not in _DRIVERS:
        raise ConfigurationError(
            f"Database URL scheme {url.drivername!r} is not supported; use "
            "sqlite+aiosqlite:///path/to/file.db or "
            "postgresql+asyncpg://user@host/dbname."
        )
    if url.drivername == backend:
        return url.set(drivername=_DRIVERS[backend])
    return url


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below; otherwise the
        # driver issues its own deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        _run_on_driver(connection.connection.dbapi_connection, f"BEGIN {mode}")

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        # The default reset sends a ROLLBACK on every check-in, one more trip
        # to aiosqlite's thread, although after a committed scope nothing is
        # open.
        if state.terminate_only or not state.asyncio_safe:
            return
        if dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()


def _run_on_driver(dbapi_connection: Any, sql: str) -> None:
    """Run one statement on aiosqlite in one trip to its thread.

    `exec_driver_sql` takes three (open a cursor, execute, close it). With the
    reset hook, this saves about a tenth of a point read (see BENCHMARKS.md).
    Errors are wrapped as SQLAlchemy's, as `exec_driver_sql` would wrap them,
    so session scopes translate them alike.
    """
    try:
        dbapi_connection.run_async(lambda driver: driver.execute_fetchall(sql))
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance(sql, None, error, sqlite3.Error) from error
