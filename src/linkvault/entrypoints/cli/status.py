"""`linkvault status`: connections by status, what expires soon, recent failures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from rich.table import Table

from linkvault.bootstrap import Services
from linkvault.domain.events import ConnectionEvent
from linkvault.domain.status import ConnectionStatus
from linkvault.entrypoints.cli._common import console, with_services


@dataclass(slots=True)
class StatusReport:
    counts: dict[ConnectionStatus, int]
    expiring_soon: int
    failures: list[ConnectionEvent]


async def collect_status(services: Services, minutes: int) -> StatusReport:
    async with services.unit_of_work(readonly=True) as work:
        counts = await work.connections.count_by_status()
        expiring = await work.connections.find_expiring_soon(minutes=minutes)
        failures = await work.events.list_recent_failures(limit=10)
    return StatusReport(counts, len(expiring), failures)


def render_status(report: StatusReport, minutes: int) -> None:
    table = Table("status", "connections", title="Connections")
    for status in ConnectionStatus:
        table.add_row(status.value, str(report.counts[status]))
    table.add_row("total", str(sum(report.counts.values())), style="bold")
    console.print(table)
    console.print(
        f"Active connections expiring within {minutes} minutes: {report.expiring_soon}"
    )

    if not report.failures:
        console.print("No recent failures.")
        return
    failures = Table("when", "connection", "provider", "event", "reason")
    for event in report.failures:
        failures.add_row(
            event.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(event.connection_id),
            event.provider_slug,
            event.event_type.value,
            event.reason or "",
        )
    console.print(failures)


def status(
    ctx: typer.Context,
    minutes: Annotated[
        int, typer.Option(min=1, help="Window for 'expiring soon', in minutes.")
    ] = 30,
) -> None:
    """Show connections by status, what expires soon and recent failures."""

    async def body(services: Services) -> StatusReport:
        return await collect_status(services, minutes)

    render_status(with_services(ctx, body), minutes)
