"""The refresh worker loop: claim due connections in batches, refresh, repeat."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

from linkvault.application.refresh import (
    RefreshOutcome,
    RefreshResult,
    RefreshService,
)
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.errors import DatabaseUnavailableError
from linkvault.domain.provider import Provider
from linkvault.ports.repositories import UnitOfWorkFactory

logger = logging.getLogger(__name__)

# Latency samples kept for percentiles; older ones are dropped.
MAX_LATENCY_SAMPLES = 100_000
# A refresh that starts later than this share of the lease after its batch was
# claimed renews the lease first. So every provider call starts with at least
# 90% of a lease ahead of it, however long it waited for a slot.
RENEW_AFTER_SHARE = 0.1
# Maximum pause, in seconds, between claims while the database is unreachable.
MAX_OUTAGE_PAUSE = 30.0
# Seconds between housekeeping runs (deleting expired authorization states).
HOUSEKEEPING_INTERVAL = 600.0


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How much a worker takes on at once."""

    batch_size: int = 100
    concurrency: int = 20
    # At most this many refreshes in flight against one provider.
    per_provider_concurrency: int = 10
    # Seconds between polls when nothing is due.
    poll_interval: float = 1.0

    def __post_init__(self) -> None:
        for name in ("batch_size", "concurrency", "per_provider_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1.")
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval={self.poll_interval} must be positive.")


@dataclass(slots=True)
class WorkerStats:
    """Counts and latencies since the worker started."""

    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    latencies: deque[float] = field(
        default_factory=lambda: deque(maxlen=MAX_LATENCY_SAMPLES)
    )

    def record(self, result: RefreshResult, seconds: float) -> None:
        self.outcomes[result.outcome.value] += 1
        if result.error:
            self.errors[result.error] += 1
        self.latencies.append(seconds)

    def percentile(self, share: float) -> float | None:
        """Return the latency below which `share` of refreshes finished, seconds."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, int(share * len(ordered)))
        return ordered[index]


class RefreshWorker:
    """Keeps due connections refreshed until stopped.

    Each batch is claimed under a lease, refreshed with bounded concurrency
    (overall and per provider), and its leases are released as each refresh
    finishes. A refresh that waited long for a slot renews its lease first and
    is skipped if another worker took the connection over. Stopping lets
    in-flight refreshes finish, starts no new ones, then releases every lease
    this worker still holds.
    """

    def __init__(
        self,
        service: RefreshService,
        unit_of_work: UnitOfWorkFactory,
        settings: WorkerSettings | None = None,
        *,
        housekeeping: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._service = service
        self._unit_of_work = unit_of_work
        self._housekeeping = housekeeping
        self._next_housekeeping = 0.0
        self.settings = settings or WorkerSettings()
        self.stats = WorkerStats()
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._provider_slots: dict[UUID, asyncio.Semaphore] = {}
        # The event passed to `run`; queued refreshes do not start once set.
        self._stopping = asyncio.Event()

    @property
    def owner(self) -> str:
        return self._service.owner

    async def run(self, stop: asyncio.Event) -> WorkerStats:
        """Refresh due connections until `stop` is set."""
        logger.info("Worker %s started: %s", self.owner, self.settings)
        self._stopping = stop
        failures = 0
        try:
            while not stop.is_set():
                try:
                    await self._keep_house()
                    processed = await self.run_batch()
                except DatabaseUnavailableError as error:
                    failures += 1
                    await self._pause_for_outage(stop, error, failures)
                    continue
                failures = 0
                if processed == 0:
                    await _wait(stop, self.settings.poll_interval)
        finally:
            await self._release_all()
        return self.stats

    async def _keep_house(self) -> None:
        if self._housekeeping is None or time.monotonic() < self._next_housekeeping:
            return
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL
        await self._housekeeping()

    async def _pause_for_outage(
        self, stop: asyncio.Event, error: DatabaseUnavailableError, failures: int
    ) -> None:
        # Leases claimed before the outage run out on their own, so waiting
        # here blocks no other worker for longer than a lease.
        pause = min(self.settings.poll_interval * 2**failures, MAX_OUTAGE_PAUSE)
        logger.error(
            "Worker %s cannot reach the database (attempt %d), retrying in %.1f s: %s",
            self.owner,
            failures,
            pause,
            error,
        )
        await _wait(stop, pause)

    async def _release_all(self) -> None:
        try:
            released = await self._service.release_all()
        except DatabaseUnavailableError as error:
            logger.warning(
                "Worker %s could not release its leases (%s); they expire on "
                "their own, and other workers take the connections over then",
                self.owner,
                error,
            )
            return
        logger.info(
            "Worker %s stopped after %d batches: %s (released %d leases)",
            self.owner,
            self.stats.batches,
            dict(self.stats.outcomes),
            released,
        )

    async def run_once(self, stop: asyncio.Event | None = None) -> WorkerStats:
        """Process everything due now, then return; `stop` ends the pass early."""
        logger.info("Worker %s started for one pass", self.owner)
        if stop is not None:
            self._stopping = stop
        try:
            while not self._stopping.is_set() and await self.run_batch():
                pass
        finally:
            await self._service.release_all()
        logger.info(
            "Worker %s finished one pass: %s", self.owner, dict(self.stats.outcomes)
        )
        return self.stats

    async def run_batch(self) -> int:
        """Claim and refresh one batch; returns how many were claimed."""
        claimed_at = time.monotonic()
        batch = await self._service.claim_due(self.settings.batch_size)
        if not batch:
            return 0
        providers = await self._providers(batch)
        results = await asyncio.gather(
            *(self._refresh(c, providers.get(c.provider_id), claimed_at) for c in batch)
        )

        self.stats.batches += 1
        done = [result for result in results if result is not None]
        counts = Counter(result.outcome.value for result in done)
        not_started = len(batch) - len(done)
        logger.info(
            "Worker %s batch of %d: %s (%d not started)",
            self.owner,
            len(batch),
            dict(counts),
            not_started,
        )
        return len(batch)

    async def _refresh(
        self,
        connection: ProviderConnection,
        provider: Provider | None,
        claimed_at: float,
    ) -> RefreshResult | None:
        """Refresh one claimed connection; None if it was not started."""
        per_provider = self._provider_slots.setdefault(
            connection.provider_id,
            asyncio.Semaphore(self.settings.per_provider_concurrency),
        )
        async with self._slots, per_provider:
            if self._stopping.is_set():
                # Its lease is released with the others when `run` ends.
                return None
            current = await self._lease_still_held(connection, claimed_at)
            if current is None:
                return None
            started = time.perf_counter()
            result = await self._service.refresh_claimed(current, provider)
            self.stats.record(result, time.perf_counter() - started)
        if result.outcome not in (RefreshOutcome.REFRESHED, RefreshOutcome.SKIPPED):
            logger.warning(
                "Connection %s: %s (%s)",
                connection.id,
                result.outcome.value,
                result.error or "no error code",
            )
        return result

    async def _lease_still_held(
        self, connection: ProviderConnection, claimed_at: float
    ) -> ProviderConnection | None:
        # Without a renewal, a lease that expired while the refresh waited for
        # a slot lets another worker redeem the same refresh token.
        lease_for = self._service.settings.lease_for.total_seconds()
        if time.monotonic() - claimed_at <= lease_for * RENEW_AFTER_SHARE:
            return connection
        try:
            current = await self._service.renew_lease(connection.id)
        except DatabaseUnavailableError as error:
            # Without a renewed lease the refresh must not run; the old lease
            # runs out and a later claim picks the connection up again.
            logger.error(
                "Connection %s skipped: its lease could not be renewed (%s)",
                connection.id,
                error,
            )
            return None
        if current is None:
            logger.info(
                "Connection %s was taken over by another worker while it waited "
                "for a slot; skipped",
                connection.id,
            )
        return current

    async def _providers(self, batch: list[ProviderConnection]) -> dict[UUID, Provider]:
        wanted = {connection.provider_id for connection in batch}
        found: dict[UUID, Provider] = {}
        async with self._unit_of_work(readonly=True) as work:
            for provider_id in wanted:
                provider = await work.providers.get(provider_id)
                if provider is not None:
                    found[provider_id] = provider
        return found


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return
