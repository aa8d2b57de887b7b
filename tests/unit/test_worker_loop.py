"""The refresh worker loop: riding out database outages, and housekeeping."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest

from linkvault.adapters.clock import FakeClock
from linkvault.adapters.memory.cipher import PlainCipher
from linkvault.application.refresh import RefreshService
from linkvault.application.worker import RefreshWorker, WorkerSettings
from linkvault.domain import ProviderConnection
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
