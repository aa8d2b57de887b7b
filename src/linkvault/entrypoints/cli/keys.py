"""`linkvault keys ...`: list, add and rotate encryption keys."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from linkvault.adapters.crypto import (
    KEY_FILE_ENV,
    add_key_to_file,
    load_keyring,
)
from linkvault.adapters.sqlalchemy.encrypted_columns import encrypted_columns
from linkvault.application.rewrap import RewrapProgress, rewrap, verify
from linkvault.bootstrap import Services
from linkvault.domain.errors import KeyConfigurationError, LinkvaultError
from linkvault.entrypoints.cli._common import (
    console,
    fail,
    state_of,
    with_services,
)
from linkvault.entrypoints.cli.setup import new_key_id

app = typer.Typer(help="Manage the encryption keyring.", no_args_is_help=True)


def _key_file(ctx: typer.Context) -> Path:
    try:
        settings = state_of(ctx).settings()
    except LinkvaultError as error:
        raise fail(str(error)) from None
    path = settings.resolved_key_file or (
        Path(os.environ[KEY_FILE_ENV]) if os.environ.get(KEY_FILE_ENV) else None
    )
    if path is None:
        raise fail(
            "No key file is configured; set key_file in linkvault.toml or "
            f"{KEY_FILE_ENV}, or run `linkvault init`. Keys given inline in "
            "LINKVAULT_KEYS cannot be edited by this command."
        )
    return path


@app.command("list")
def list_keys(ctx: typer.Context) -> None:
    """Show the ids of the loaded keys and which one is primary."""
    try:
        settings = state_of(ctx).settings()
        keyring = load_keyring(key_file=settings.resolved_key_file)
    except LinkvaultError as error:
        raise fail(str(error)) from None

    table = Table("key id", "primary")
    for key_id in keyring.key_ids:
        table.add_row(key_id, "yes" if key_id == keyring.primary_key_id else "")
    console.print(table)


@app.command("add")
def add_key(
    ctx: typer.Context,
    key_id: Annotated[
        str | None, typer.Option("--id", help="Id of the new key (default: dated).")
    ] = None,
    primary: Annotated[
        bool, typer.Option("--primary", help="Make the new key the primary key.")
    ] = False,
) -> None:
    """Generate a new key into the key file; old keys stay for decryption."""
    path = _key_file(ctx)
    try:
        key = add_key_to_file(path, key_id or new_key_id(), make_primary=primary)
    except KeyConfigurationError as error:
        raise fail(str(error)) from None
    role = "primary" if primary else "not primary"
    console.print(f"Added key {key.key_id} ({role}) to {path}.")


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    new_key: Annotated[
        bool,
        typer.Option(
            "--new-key", help="First add a new key and make it the primary key."
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Rows re-encrypted per batch.")
    ] = 500,
) -> None:
    """Re-encrypt every stored secret under the primary key, then verify.

    Safe to interrupt: running it again finishes the rows that are left.
    """
    if new_key:
        path = _key_file(ctx)
        try:
            key = add_key_to_file(path, new_key_id(), make_primary=True)
        except KeyConfigurationError as error:
            raise fail(str(error)) from None
        console.print(f"Added key {key.key_id} as primary to {path}.")

    async def body(services: Services) -> bool:
        columns = encrypted_columns(services.database)
        total = sum([await column.count() for column in columns])
        with _progress(total) as advance:
            report = await rewrap(
                services.keyring, columns, batch_size=batch_size, on_progress=advance
            )
        check = await verify(services.keyring, columns, batch_size=batch_size)
        for column in report.columns:
            console.print(
                f"{column.column}: {column.rewrapped} rewrapped, "
                f"{column.already_primary} already on the primary key, "
                f"{column.raced} changed meanwhile, {column.failed} failed"
            )
        return check.ok

    if not with_services(ctx, body):
        raise fail(
            "Verification found rows that do not decrypt or are not under the "
            "primary key; keep every old key loaded and run `linkvault keys "
            "rotate` again."
        )
    console.print("Every stored secret decrypts and is under the primary key.")


@contextmanager
def _progress(total: int) -> Iterator[Callable[[RewrapProgress], None]]:
    """Yield a progress callback: a live bar on a terminal, else one line a batch.

    Plain lines let scripts and tests follow a long rewrap without a terminal.
    """
    if not console.is_terminal:

        def print_line(update: RewrapProgress) -> None:
            console.print(f"Rewrapped {update.rows_done}/{total} rows")

        yield print_line
        return

    columns = (TextColumn("Rewrapping"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("rewrap", total=total)

        def advance(update: RewrapProgress) -> None:
            progress.update(task, completed=update.rows_done)

        yield advance
        progress.update(task, completed=total)
