"""`linkvault init`: a config file and a key file to start from."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from linkvault.adapters.crypto import EncryptionKey, write_key_file
from linkvault.config import DEFAULT_CONFIG_NAME, DEFAULT_KEY_FILE_NAME, render_config
from linkvault.domain.errors import LinkvaultError
from linkvault.entrypoints.cli._common import console, fail


def new_key_id() -> str:
    """Return a key id that records when it was made, such as key-20261204-153000-a1b2.

    The random suffix keeps ids unique when two keys are made in one second.
    """
    return datetime.now(UTC).strftime("key-%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def init(
    directory: Annotated[
        Path,
        typer.Option("--dir", help="Folder for linkvault.toml and linkvault.keys."),
    ] = Path(),
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Database URL to write; default: linkvault.db beside the config.",
        ),
    ] = None,
) -> None:
    """Write a config file and a new key file (mode 0600) into a folder."""
    config_path = directory / DEFAULT_CONFIG_NAME
    key_path = directory / DEFAULT_KEY_FILE_NAME
    if config_path.exists():
        raise fail(
            f"{config_path} already exists; edit it, or pass --dir to create "
            "a new configuration elsewhere."
        )

    key_id = new_key_id()
    try:
        write_key_file(key_path, [EncryptionKey.generate(key_id)], key_id)
    except LinkvaultError as error:
        raise fail(str(error)) from None
    directory.mkdir(parents=True, exist_ok=True)
    config_path.write_text(render_config(database_url, Path(DEFAULT_KEY_FILE_NAME)))

    console.print(f"Wrote config   {config_path.resolve()}")
    console.print(f"Wrote key file {key_path.resolve()} (mode 0600, owner only)")
    console.print(
        "Back up the key file: without it the stored credentials cannot be "
        "decrypted. Next: `linkvault db upgrade`."
    )
