"""`linkvault demo`: the sandbox, real connects, several workers, the checks."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from linkvault.entrypoints.cli._common import error_console, run


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def demo(
    users: Annotated[
        int, typer.Option(min=1, help="Users to connect through the sandbox.")
    ] = 200,
    duration: Annotated[
        float, typer.Option(min=1, help="Seconds the workers run.")
    ] = 60.0,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes to run side by side.")
    ] = 2,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            file_okay=False,
            help="Folder for the config, key, database and logs (default: a new "
            "temporary folder). It must not hold a database from an earlier run.",
        ),
    ] = None,
    log_level: Annotated[
        LogLevel,
        typer.Option(
            case_sensitive=False,
            help="Log level of the workers, the sandbox and the demo's own log file.",
        ),
    ] = LogLevel.INFO,
) -> None:
    """Refresh OAuth tokens of sandbox users from several workers, then check them.

    Starts a local OAuth 2.0 sandbox with 20-second access tokens and connects
    the users through the authorization code flow. The workers then run under
    a burst of injected HTTP 500 and 429 responses. Exits with code 1 unless no
    refresh token was redeemed twice and every stored one is current.
    """
    # Imported here because the demo package imports the worker command,
    # whose package imports this module.
    from linkvault.entrypoints.demo.run import DemoOptions, run_demo

    options = DemoOptions(
        folder=directory,
        users=users,
        duration=duration,
        workers=workers,
        log_level=log_level.value,
    )
    # Rich's live view must wrap lines to the terminal width to redraw in
    # place, which the CLI's shared soft-wrapping console does not do.
    console = Console(highlight=False)
    try:
        summary = run(run_demo(options, console))
    except (KeyboardInterrupt, asyncio.CancelledError):
        error_console.print("Demo interrupted; the sandbox and workers were stopped.")
        raise typer.Exit(code=130) from None
    if not summary.passed:
        raise typer.Exit(code=1)
