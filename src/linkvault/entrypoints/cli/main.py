"""The root `linkvault` command and its sub-commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from linkvault.entrypoints.cli import (
    connect,
    connections,
    database,
    demo,
    keys,
    providers,
    sandbox,
    setup,
    status,
    worker,
)
from linkvault.entrypoints.cli._common import CliState

app = typer.Typer(
    name="linkvault",
    help="Keep users' provider connections alive and their credentials encrypted.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("init")(setup.init)
app.command("status")(status.status)
app.command("demo")(demo.demo)
app.command("connect")(connect.connect)
app.command("worker")(worker.worker)
app.command(
    "sandbox",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)(sandbox.sandbox)
app.add_typer(database.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(connections.app, name="connections")
app.add_typer(providers.app, name="providers")


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (default: LINKVAULT_CONFIG or ./linkvault.toml).",
            envvar="LINKVAULT_CONFIG",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="SQLAlchemy database URL override."),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR."),
    ] = None,
) -> None:
    ctx.obj = CliState(config, database_url, log_level)


def main() -> None:
    app()
