"""Rich renderables of the demo: the live view while workers run, the summary."""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from linkvault.domain.status import ConnectionStatus
from linkvault.entrypoints.demo.summary import DemoSummary, WorkerReport

# Sandbox counters shown live, in this order, with their labels.
_SANDBOX_COUNTERS = (
    ("refreshes", "refresh tokens redeemed"),
    ("tokens_issued", "token responses"),
    ("faults_served", "faults served"),
    ("reuse_detections", "reuse detections"),
    ("active_grants", "active grants"),
)


@dataclass(frozen=True, slots=True)
class LiveState:
    """Snapshot of the numbers in the live view."""

    users: int
    duration: float
    elapsed: float
    statuses: dict[ConnectionStatus, int]
    workers: tuple[WorkerReport, ...]
    sandbox_stats: dict[str, int]
    burst: str


def render_live(state: LiveState) -> RenderableType:
    """Build the view that Rich's `Live` redraws while the workers run."""
    left = max(0.0, state.duration - state.elapsed)
    clock = Table.grid(padding=(0, 1))
    clock.add_row(
        ProgressBar(total=state.duration, completed=state.elapsed, width=40),
        Text(f"{left:4.0f} s left of {state.duration:g} s"),
    )

    # Side by side, then the workers below: fits 80 columns and 24 lines.
    panels = Table.grid(padding=(0, 4))
    panels.add_row(_status_table(state.statuses), _sandbox_table(state.sandbox_stats))
    title = Text(
        f"{len(state.workers)} workers refreshing {state.users} connections",
        style="bold",
    )
    workers = _worker_table(state.workers, with_exit=False)
    return Group(title, clock, panels, workers, Text(state.burst))


def render_summary(summary: DemoSummary) -> RenderableType:
    """Build the final report: per-worker numbers, then the checks."""
    workers = _worker_table(summary.workers, with_exit=True)
    workers.caption = "Latency percentiles are per worker: they do not add up."

    checks = Table("check", "result", "", title="Checks")
    _check_row(
        checks,
        "reuse detections at the sandbox",
        str(summary.reuse_detections),
        summary.reuse_detections == 0,
    )
    _check_row(
        checks,
        "active connections holding the current refresh token",
        f"{summary.tokens.current} of {summary.tokens.active}",
        summary.tokens.passed,
    )
    _check_row(
        checks,
        "connections still active",
        f"{summary.still_active} of {summary.users}",
        summary.still_active == summary.users,
    )
    _check_row(
        checks,
        "workers stopped cleanly",
        f"{summary.clean_exits} of {len(summary.workers)}",
        summary.clean_exits == len(summary.workers),
    )
    return Group(workers, checks, _verdict(summary))


def _check_row(table: Table, check: str, result: str, passed: bool) -> None:
    verdict = Text("ok", style="green") if passed else Text("FAILED", style="bold red")
    table.add_row(check, str(result), verdict)


def _verdict(summary: DemoSummary) -> Text:
    if summary.passed:
        return Text(
            f"Passed: {summary.refreshed} refreshes by {len(summary.workers)} "
            "workers, no refresh token redeemed twice, every stored token current.",
            style="bold green",
        )
    return Text(
        "FAILED: see the checks above and the log files listed at the start.",
        style="bold red",
    )


def _status_table(statuses: dict[ConnectionStatus, int]) -> Table:
    table = Table(
        "status",
        "connections",
        title="Connections",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    for status in ConnectionStatus:
        table.add_row(status.value, str(statuses.get(status, 0)))
    return table


def _worker_table(workers: tuple[WorkerReport, ...], *, with_exit: bool) -> Table:
    table = Table(
        "worker",
        "refreshes",
        "failures retried",
        "p50",
        "p95",
        title="Workers",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    if with_exit:
        table.add_column("exit code")
    for worker in workers:
        row = [
            worker.name,
            str(worker.refreshed),
            str(worker.retried),
            _milliseconds(worker.p50_seconds),
            _milliseconds(worker.p95_seconds),
        ]
        if with_exit:
            row.append("-" if worker.exit_code is None else str(worker.exit_code))
        table.add_row(*row)

    total = sum(worker.refreshed for worker in workers)
    retried = sum(worker.retried for worker in workers)
    table.add_row("all", str(total), str(retried), "", "", style="bold")
    return table


def _sandbox_table(stats: dict[str, int]) -> Table:
    table = Table(
        "counter", "value", title="Sandbox", box=box.SIMPLE_HEAD, show_edge=False
    )
    for key, label in _SANDBOX_COUNTERS:
        table.add_row(label, str(stats.get(key, 0)))
    return table


def _milliseconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    milliseconds = seconds * 1000
    return f"{milliseconds:.1f} ms" if milliseconds < 10 else f"{milliseconds:.0f} ms"
