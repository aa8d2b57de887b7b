"""`linkvault sandbox`: run the local OAuth 2.0 authorization server."""

from __future__ import annotations

import typer

from linkvault.sandbox import main as sandbox_main


def sandbox(ctx: typer.Context) -> None:
    """Run the sandbox authorization server on loopback (see --help of it).

    Every argument goes to the sandbox, for example
    `linkvault sandbox --port 8765 --access-token-lifetime 20`.
    """
    raise typer.Exit(sandbox_main(list(ctx.args)))
