"""`linkvault worker`: keep every due connection refreshed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from linkvault.application.refresh import RefreshSettings
from linkvault.application.worker import RefreshWorker, WorkerSettings, WorkerStats
from linkvault.bootstrap import Services
from linkvault.domain.errors import ConfigurationError
from linkvault.entrypoints.cli._common import console, with_services

logger = logging.getLogger(__name__)

READY_PREFIX = "WORKER READY"
# Seconds between rewrites of the `--stats-file` while the worker runs.
STATS_INTERVAL = 1.0


def worker(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Process what is due now, then exit.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Connections claimed per batch.")
    ] = 100,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Refreshes in flight at once.")
    ] = 20,
    per_provider: Annotated[
        int,
        typer.Option(
            "--per-provider-concurrency",
            min=1,
            help="Refreshes in flight at once against one provider.",
        ),
    ] = 10,
    lease_seconds: Annotated[
        float,
        typer.Option(
            min=1, help="Lease length in seconds; must outlast the HTTP timeout."
        ),
    ] = 60.0,
    poll_seconds: Annotated[
        float, typer.Option(min=0.01, help="Seconds between polls when idle.")
    ] = 1.0,
    save_window_ms: Annotated[
        float,
        typer.Option(
            min=0,
            max=1000,
            help=(
                "Milliseconds a finished refresh waits for others to share its "
                "database transaction."
            ),
        ),
    ] = 0.0,
    stats_file: Annotated[
        Path | None,
        typer.Option(
            "--stats-file",
            dir_okay=False,
            help=(
                "JSON file that receives the outcome and error counts and the "
                "refresh latency percentiles, rewritten every second and on exit."
            ),
        ),
    ] = None,
) -> None:
    """Refresh OAuth tokens before they expire, until SIGTERM or SIGINT."""
    settings = WorkerSettings(
        batch_size=batch_size,
        concurrency=concurrency,
        per_provider_concurrency=per_provider,
        poll_interval=poll_seconds,
    )
    refresh = RefreshSettings(
        lease_for=timedelta(seconds=lease_seconds),
        save_window=timedelta(milliseconds=save_window_ms),
    )

    async def body(services: Services) -> WorkerStats:
        service = services.refresh_service(settings=refresh)
        loop = RefreshWorker(
            service,
            services.unit_of_work,
            settings,
            housekeeping=services.connect_service().prune_expired_states,
        )
        await services.database.check()
        # Handlers go in before the ready line, so a SIGTERM right after it
        # still stops cleanly and releases the leases.
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, stop.set)

        async with publishing_stats(stats_file, loop):
            print(f"{READY_PREFIX} {service.owner}", flush=True)
            if once:
                return await loop.run_once(stop)
            return await loop.run(stop)

    stats = with_services(ctx, body)
    console.print(f"Worker finished: {dict(stats.outcomes)}", highlight=False)
    sys.stdout.flush()


def stats_document(owner: str, stats: WorkerStats, *, running: bool) -> dict[str, Any]:
    """Describe a worker's counters as the JSON document of `--stats-file`.

    `samples` is the number of latencies kept, which stops growing at
    `MAX_LATENCY_SAMPLES`. The percentiles are None before the first refresh.
    """
    return {
        "owner": owner,
        "running": running,
        "batches": stats.batches,
        "outcomes": dict(stats.outcomes),
        "errors": dict(stats.errors),
        "latency_seconds": {
            "samples": len(stats.latencies),
            "p50": stats.percentile(0.50),
            "p95": stats.percentile(0.95),
        },
    }


def write_stats_file(path: Path, document: dict[str, Any]) -> None:
    """Replace `path` atomically, so a reader never sees half a document."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


@contextlib.asynccontextmanager
async def publishing_stats(
    path: Path | None, worker: RefreshWorker
) -> AsyncIterator[None]:
    """Write the stats file now, every `STATS_INTERVAL` seconds and at the end.

    Raises:
        ConfigurationError: The first write failed, so the path is unusable.
    """
    if path is None:
        yield
        return

    try:
        write_stats_file(path, stats_document(worker.owner, worker.stats, running=True))
    except OSError as error:
        raise ConfigurationError(
            f"The stats file {path} cannot be written ({error.strerror}); pass a "
            "--stats-file path in an existing, writable folder."
        ) from error

    task = asyncio.create_task(_publish_periodically(path, worker))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        _publish(path, worker, running=False)


async def _publish_periodically(path: Path, worker: RefreshWorker) -> None:
    while True:
        await asyncio.sleep(STATS_INTERVAL)
        _publish(path, worker, running=True)


def _publish(path: Path, worker: RefreshWorker, *, running: bool) -> None:
    try:
        write_stats_file(
            path, stats_document(worker.owner, worker.stats, running=running)
        )
    except OSError as error:
        # The stats file is only a report, so refreshing goes on without it.
        logger.warning("Writing the stats file %s failed: %s", path, error)
