"""`linkvault connections ...`: list, show and delete connections."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from linkvault.application.connections import delete_connection
from linkvault.bootstrap import Services
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.errors import ConnectionNotFoundError, ProviderNotFoundError
from linkvault.domain.events import ConnectionEvent
from linkvault.domain.status import ConnectionStatus
from linkvault.entrypoints.cli._common import console, fail, parse_uuid, with_services
from linkvault.entrypoints.cli.connect import disconnect, reconnect

app = typer.Typer(help="Inspect and manage connections.", no_args_is_help=True)
app.command("reconnect")(reconnect)
app.command("disconnect")(disconnect)


def _when(connection_value: object) -> str:
    return "" if connection_value is None else str(connection_value)[:19]


@app.command("list")
def list_connections(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user id.")] = None,
    provider: Annotated[
        str | None, typer.Option(help="Only this provider slug.")
    ] = None,
    status: Annotated[
        ConnectionStatus | None, typer.Option(help="Only this status.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows to show at most.")] = 100,
) -> None:
    """List connections, oldest id first, with optional filters."""
    user_id = parse_uuid(user, "User id") if user else None

    async def body(services: Services) -> list[ProviderConnection]:
        async with services.unit_of_work(readonly=True) as work:
            provider_id = None
            if provider is not None:
                found = await work.providers.get_by_slug(provider)
                if found is None:
                    raise ProviderNotFoundError(provider)
                provider_id = found.id
            return await work.connections.list_connections(
                user_id=user_id, provider_id=provider_id, status=status, limit=limit
            )

    rows = with_services(ctx, body)
    table = Table("id", "user", "provider", "status", "expires (UTC)", "alias")
    for connection in rows:
        expires = connection.credentials.expires_at if connection.credentials else None
        table.add_row(
            str(connection.id),
            str(connection.user_id),
            connection.provider_slug,
            connection.status.value,
            _when(expires),
            connection.alias or "",
        )
    console.print(table)
    console.print(f"{len(rows)} connection(s)")


@app.command("show")
def show(
    ctx: typer.Context,
    connection_id: Annotated[str, typer.Argument(help="Connection id (UUID).")],
) -> None:
    """Show one connection and its history. Never shows credentials."""
    wanted = parse_uuid(connection_id, "Connection id")

    async def body(
        services: Services,
    ) -> tuple[ProviderConnection, list[ConnectionEvent]]:
        async with services.unit_of_work(readonly=True) as work:
            connection = await work.connections.find_by_id(wanted)
            if connection is None:
                raise ConnectionNotFoundError(wanted)
            return connection, await work.events.list_for_connection(wanted)

    connection, events = with_services(ctx, body)
    details = Table.grid(padding=(0, 2))
    credentials = connection.credentials
    fields = {
        "id": connection.id,
        "user": connection.user_id,
        "provider": connection.provider_slug,
        "status": connection.status.value,
        "status reason": connection.status_reason,
        "alias": connection.alias,
        "credentials": repr(credentials) if credentials else None,
        "connected at": connection.connected_at,
        "next refresh at": connection.next_refresh_at,
        "refresh failures": connection.refresh_failures,
        "last refresh error": connection.last_refresh_error,
        "version": connection.version,
    }
    for name, value in fields.items():
        details.add_row(name, "" if value is None else str(value))
    console.print(details)

    history = Table("when (UTC)", "event", "from", "to", "reason", title="History")
    for event in events:
        history.add_row(
            _when(event.occurred_at),
            event.event_type.value,
            event.status_before or "",
            event.status_after or "",
            event.reason or "",
        )
    console.print(history)


@app.command("delete")
def delete(
    ctx: typer.Context,
    connection_id: Annotated[str, typer.Argument(help="Connection id (UUID).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask to confirm.")] = False,
) -> None:
    """Delete a connection for good; its history stays, with a `deleted` event."""
    wanted = parse_uuid(connection_id, "Connection id")
    if not yes and not typer.confirm(f"Delete connection {wanted} for good?"):
        raise fail("Deletion cancelled; nothing changed.")

    async def body(services: Services) -> None:
        async with services.unit_of_work() as work:
            await delete_connection(work, wanted, services.clock, actor="cli")

    with_services(ctx, body)
    console.print(f"Deleted connection {wanted}.")
