"""`linkvault db ...`: schema migrations."""

from __future__ import annotations

import typer

from linkvault.adapters.sqlalchemy.migrate import current_revision, upgrade
from linkvault.bootstrap import Services
from linkvault.entrypoints.cli._common import console, with_services

app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Create or migrate the schema to the newest revision."""

    async def body(services: Services) -> str | None:
        await services.database.check()
        await upgrade(services.database)
        return await current_revision(services.database)

    revision = with_services(ctx, body)
    console.print(f"Database is at revision {revision}.")
