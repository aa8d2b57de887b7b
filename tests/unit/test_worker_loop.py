"""The refresh worker loop: riding out database outages, and housekeeping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import pytest

from factories import make_connection, make_provider
from linkvault.adapters.clock import FakeClock
from linkvault.adapters.memory.cipher import PlainCipher
from linkvault.application.refresh import (
    RefreshOutcome,
    RefreshResult,
    RefreshService,
    RefreshSettings,
)
from linkvault.application.worker import RefreshWorker, WorkerSettings
from linkvault.domain import Provider, ProviderConnection
from linkvault.domain.errors import DatabaseUnavailableError
from linkvault.ports.repositories import UnitOfWorkFactory
from linkvault.ports.token_endpoint import TokenEndpoint

OUTAGE = "Database sqlite:///x.db is unavailable (OperationalError: locked)."


class FlakyService(RefreshService):
    """Claims fail `failures` times, then one empty claim stops the worker."""

    def __init__(self, stop: asyncio.Event, *, failures: int, fail_release: bool):
        super().__init__(
            cast(UnitOfWorkFactory, None),
            PlainCipher(),
            FakeClock(),
            cast(TokenEndpoint, None),
            {},
            owner="flaky-worker",
        )
        self.stop = stop
        self.failures = failures
        self.fail_release = fail_release
        self.claims = 0

    async def claim_due(self, limit: int) -> list[ProviderConnection]:
        self.claims += 1
        if self.claims <= self.failures:
            raise DatabaseUnavailableError(OUTAGE)
        self.stop.set()
        return []

    async def release_all(self) -> int:
        if self.fail_release:
            raise DatabaseUnavailableError(OUTAGE)
        return 0


async def run_worker(service: FlakyService) -> Any:
    settings = WorkerSettings(poll_interval=0.01)
    worker = RefreshWorker(service, cast(UnitOfWorkFactory, None), settings)
    async with asyncio.timeout(10):
        return await worker.run(service.stop)


async def test_worker_retries_claims_after_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = FlakyService(asyncio.Event(), failures=3, fail_release=False)

    with caplog.at_level(logging.ERROR):
        await run_worker(service)

    assert service.claims == 4
    outage_lines = [r for r in caplog.records if "cannot reach" in r.getMessage()]
    assert len(outage_lines) == 3


async def test_worker_stops_when_release_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = FlakyService(asyncio.Event(), failures=0, fail_release=True)

    with caplog.at_level(logging.WARNING):
        stats = await run_worker(service)

    assert stats.batches == 0
    assert any("could not release" in r.getMessage() for r in caplog.records)


async def test_worker_keeps_house_at_start() -> None:
    service = FlakyService(asyncio.Event(), failures=0, fail_release=False)
    calls: list[str] = []

    async def housekeeping() -> int:
        calls.append("pruned")
        return 0

    worker = RefreshWorker(
        service,
        cast(UnitOfWorkFactory, None),
        WorkerSettings(poll_interval=0.01),
        housekeeping=housekeeping,
    )
    async with asyncio.timeout(10):
        await worker.run(service.stop)

    assert calls == ["pruned"]


class StuckRenewalService(FlakyService):
    """Claims one connection, then fails to renew its lease."""

    def __init__(self, stop: asyncio.Event, connection: ProviderConnection):
        super().__init__(stop, failures=0, fail_release=False)
        self.settings = RefreshSettings(lease_for=timedelta(milliseconds=1))
        self.connection = connection
        self.refreshed: list[ProviderConnection] = []

    async def claim_due(self, limit: int) -> list[ProviderConnection]:
        self.claims += 1
        if self.claims == 1:
            return [self.connection]
        self.stop.set()
        return []

    async def renew_lease(self, connection_id: UUID) -> ProviderConnection | None:
        raise DatabaseUnavailableError(OUTAGE)

    async def refresh_claimed(
        self, connection: ProviderConnection, provider: Provider | None = None
    ) -> RefreshResult:
        self.refreshed.append(connection)
        return RefreshResult(connection.id, RefreshOutcome.REFRESHED)


@asynccontextmanager
async def no_providers(*, readonly: bool = False) -> AsyncIterator[Any]:
    class Providers:
        async def get(self, provider_id: UUID) -> Provider | None:
            return None

    class Work:
        providers = Providers()

    yield Work()


async def test_refresh_skipped_when_renewal_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connection = make_connection(make_provider(), datetime.now(UTC))
    service = StuckRenewalService(asyncio.Event(), connection)
    worker = RefreshWorker(
        service,
        cast(UnitOfWorkFactory, no_providers),
        WorkerSettings(poll_interval=0.01),
    )

    with caplog.at_level(logging.ERROR):
        async with asyncio.timeout(10):
            await worker.run(service.stop)

    assert service.refreshed == []
    assert service.claims == 2
    assert any("could not be renewed" in r.getMessage() for r in caplog.records)
