"""`linkvault worker`: keep every due connection refreshed."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from typing import Annotated

import typer

from linkvault.application.refresh import RefreshSettings
from linkvault.application.worker import RefreshWorker, WorkerSettings, WorkerStats
from linkvault.bootstrap import Services
from linkvault.entrypoints.cli._common import console, with_services

READY_PREFIX = "WORKER READY"


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
) -> None:
    """Refresh OAuth tokens before they expire, until SIGTERM or SIGINT."""
    settings = WorkerSettings(
        batch_size=batch_size,
        concurrency=concurrency,
        per_provider_concurrency=per_provider,
        poll_interval=poll_seconds,
    )
    refresh = RefreshSettings(lease_for=timedelta(seconds=lease_seconds))

    async def body(services: Services) -> WorkerStats:
        service = services.refresh_service(settings=refresh)
        loop = RefreshWorker(service, services.unit_of_work, settings)
        await services.database.check()
        print(f"{READY_PREFIX} {service.owner}", flush=True)
        if once:
            return await loop.run_once()

        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, stop.set)
        return await loop.run(stop)

    stats = with_services(ctx, body)
    console.print(f"Worker finished: {dict(stats.outcomes)}", highlight=False)
    sys.stdout.flush()
