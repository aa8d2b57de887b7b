"""The live phase of the demo: workers run, a fault burst arrives, Rich redraws."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from rich.console import Console
from rich.live import Live

from linkvault.bootstrap import Services
from linkvault.entrypoints.demo.errors import DemoError
from linkvault.entrypoints.demo.processes import ChildProcess
from linkvault.entrypoints.demo.sandbox import SandboxAdmin
from linkvault.entrypoints.demo.summary import WorkerReport
from linkvault.entrypoints.demo.view import LiveState, render_live
from linkvault.entrypoints.demo.workspace import Workspace

logger = logging.getLogger(__name__)

# Share of the run after which the fault burst is queued.
BURST_AT = 1 / 3
# Seconds of Retry-After on the injected 429 responses.
BURST_RETRY_AFTER = 5
# Seconds between redraws of the live view.
VIEW_INTERVAL = 1.0


async def watch_workers(
    workers: Sequence[ChildProcess],
    *,
    users: int,
    duration: float,
    workspace: Workspace,
    services: Services,
    admin: SandboxAdmin,
    console: Console,
) -> None:
    """Show the live view for `duration` seconds and queue the fault burst.

    Raises:
        DemoError: A worker exited before the end, or a request to the
            sandbox's admin API failed.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    burst = FaultBurst(users, at=duration * BURST_AT)

    async def state() -> LiveState:
        elapsed = min(loop.time() - started, duration)
        reports = tuple(
            WorkerReport.read(worker.name, workspace.stats_file(worker.name))
            for worker in workers
        )
        async with services.unit_of_work(readonly=True) as work:
            statuses = await work.connections.count_by_status()
        return LiveState(
            users=users,
            duration=duration,
            elapsed=elapsed,
            statuses=statuses,
            workers=reports,
            sandbox_stats=await admin.stats(),
            burst=burst.describe(),
        )

    try:
        with Live(
            render_live(await state()), console=console, auto_refresh=False
        ) as live:
            while (elapsed := loop.time() - started) < duration:
                await burst.inject_when_due(admin, elapsed)
                _require_running(workers)
                live.update(render_live(await state()), refresh=True)
                await asyncio.sleep(min(VIEW_INTERVAL, duration - elapsed))
            live.update(render_live(await state()), refresh=True)
    finally:
        if not console.is_terminal:
            # Outside a terminal, Rich prints the last view without ending its line.
            console.line()


class FaultBurst:
    """HTTP 500 and 429 responses queued at the sandbox once, part-way through."""

    def __init__(self, users: int, *, at: float) -> None:
        self.at = at
        # Each fault covers as many refresh requests as a tenth of the users,
        # and at least two.
        self.size = max(2, users // 10)
        self.queued_at: float | None = None

    async def inject_when_due(self, admin: SandboxAdmin, elapsed: float) -> None:
        """Queue the faults once `elapsed` seconds reach `at`, and only once."""
        if self.queued_at is not None or elapsed < self.at:
            return
        await admin.add_fault("status_500", self.size)
        await admin.add_fault("status_429", self.size, retry_after=BURST_RETRY_AFTER)
        self.queued_at = elapsed
        logger.info("Queued %d HTTP 500 and %d HTTP 429 faults", self.size, self.size)

    def describe(self) -> str:
        faults = (
            f"{self.size} HTTP 500 and {self.size} HTTP 429 "
            f"(Retry-After {BURST_RETRY_AFTER} s) responses"
        )
        if self.queued_at is None:
            return f"Fault burst of {faults} due at {self.at:.0f} s."
        return (
            f"Fault burst of {faults} queued at {self.queued_at:.0f} s. Failed "
            "refreshes are retried with backoff."
        )


def _require_running(workers: Sequence[ChildProcess]) -> None:
    for worker in workers:
        if worker.returncode is not None:
            raise DemoError(
                f"The {worker.name} process exited with code {worker.returncode} "
                f"during the run; its output is in {worker.log}."
            )
