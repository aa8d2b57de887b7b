"""Composition root: builds the adapters from settings and hands out work scopes.

Entrypoints (the CLI, the worker, a host application) call `build` once and
use `Services.unit_of_work()` for each piece of work.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from linkvault.adapters.clock import SystemClock
from linkvault.adapters.crypto import Keyring, load_keyring
from linkvault.adapters.oauth import HttpTokenEndpoint
from linkvault.adapters.sqlalchemy.connection_repository import (
    SqlAlchemyConnectionRepository,
)
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.leases import SqlAlchemyLeaseRepository
from linkvault.adapters.sqlalchemy.provider_repository import (
    SqlAlchemyEventLog,
    SqlAlchemyProviderRepository,
)
from linkvault.adapters.sqlalchemy.state_repository import SqlAlchemyStateRepository
from linkvault.application.connect import ConnectService
from linkvault.application.refresh import RefreshService, RefreshSettings
from linkvault.config import Settings
from linkvault.ports.clock import Clock

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class UnitOfWork:
    """Repositories that share one transaction."""

    connections: SqlAlchemyConnectionRepository
    providers: SqlAlchemyProviderRepository
    events: SqlAlchemyEventLog
    states: SqlAlchemyStateRepository
    leases: SqlAlchemyLeaseRepository


@dataclass(slots=True)
class Services:
    """Everything an entrypoint needs, built once from settings."""

    settings: Settings
    database: Database
    clock: Clock
    _keyring: Keyring | None = None
    _token_endpoint: HttpTokenEndpoint | None = None

    @property
    def keyring(self) -> Keyring:
        """The keyring, loaded on first use so key-less commands still run."""
        if self._keyring is None:
            self._keyring = load_keyring(key_file=self.settings.resolved_key_file)
        return self._keyring

    @asynccontextmanager
    async def unit_of_work(
        self, *, readonly: bool = False
    ) -> AsyncIterator[UnitOfWork]:
        """Open a transaction: commits on clean exit, rolls back on error."""
        async with self.database.session(readonly=readonly) as session:
            yield UnitOfWork(
                connections=SqlAlchemyConnectionRepository(session, self.clock),
                providers=SqlAlchemyProviderRepository(session, self.clock),
                events=SqlAlchemyEventLog(session),
                states=SqlAlchemyStateRepository(session),
                leases=SqlAlchemyLeaseRepository(session),
            )

    @property
    def token_endpoint(self) -> HttpTokenEndpoint:
        """The token endpoint client, created on first use."""
        if self._token_endpoint is None:
            self._token_endpoint = HttpTokenEndpoint(
                http_client=self.settings.http_client
            )
        return self._token_endpoint

    def connect_service(self) -> ConnectService:
        """Build the connect use cases over this process's adapters."""
        return ConnectService(
            self.unit_of_work,
            self.keyring,
            self.clock,
            self.token_endpoint,
            os.environ,
        )

    def refresh_service(
        self, *, owner: str | None = None, settings: RefreshSettings | None = None
    ) -> RefreshService:
        """Build the refresh use cases; `owner` defaults to host, pid and a nonce."""
        return RefreshService(
            self.unit_of_work,
            self.keyring,
            self.clock,
            self.token_endpoint,
            os.environ,
            owner=owner or default_owner(),
            settings=settings,
        )

    async def close(self) -> None:
        if self._token_endpoint is not None:
            await self._token_endpoint.aclose()
        await self.database.dispose()


def default_owner() -> str:
    """Return a lease owner id unique to this process, such as web-1:4242:a1b2."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


def build(settings: Settings, *, clock: Clock | None = None) -> Services:
    """Build the services from settings; the keyring is loaded lazily."""
    database = Database.from_url(settings.resolved_database_url)
    logger.debug("Using database %s", database.safe_url)
    return Services(settings=settings, database=database, clock=clock or SystemClock())
