"""`linkvault demo`: a first run on SQLite with a fresh key and sample data."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from linkvault.adapters.crypto import EncryptionKey, write_key_file
from linkvault.adapters.sqlalchemy.migrate import upgrade
from linkvault.application.credentials import open_api_key, open_token_set
from linkvault.application.samples import sample_connections, sample_providers
from linkvault.bootstrap import Services, build
from linkvault.config import DEFAULT_KEY_FILE_NAME, load_settings, render_config
from linkvault.domain.events import ConnectionEvent, EventType
from linkvault.domain.status import ConnectionStatus, CredentialType
from linkvault.entrypoints.cli._common import configure_logging, console, run
from linkvault.entrypoints.cli.setup import new_key_id
from linkvault.entrypoints.cli.status import collect_status, render_status
from linkvault.ids import new_id

_EVENT_OF_STATUS = {
    ConnectionStatus.PENDING: EventType.CREATED,
    ConnectionStatus.ACTIVE: EventType.CONNECTED,
    ConnectionStatus.FAILED: EventType.CONNECT_FAILED,
    ConnectionStatus.EXPIRED: EventType.EXPIRED,
    ConnectionStatus.REVOKED: EventType.REVOKED,
    ConnectionStatus.DISCONNECTED: EventType.DISCONNECTED,
}


def demo(
    users: Annotated[int, typer.Option(min=1, help="Sample users to create.")] = 25,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder to work in (default: a new temporary one)."),
    ] = None,
) -> None:
    """Set up a throwaway SQLite database and key, store samples, print status."""
    folder = directory or Path(tempfile.mkdtemp(prefix="linkvault-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "linkvault.toml"
    key_id = new_key_id()
    write_key_file(
        folder / DEFAULT_KEY_FILE_NAME,
        [EncryptionKey.generate(key_id)],
        key_id,
        overwrite=True,
    )
    config.write_text(render_config(None, Path(DEFAULT_KEY_FILE_NAME)))
    settings = load_settings(config)
    configure_logging("WARNING")
    console.print(f"Working in {folder} (config, key file and SQLite database).")

    run(_run_demo(build(settings), users))
    console.print(
        f"Explore it: linkvault --config {config} connections list --status active"
    )


async def _run_demo(services: Services, users: int) -> None:
    try:
        await upgrade(services.database)
        stored = await _store_samples(services, users)
        console.print(
            f"Stored {stored} connections; every credential is AES-256-GCM "
            f"encrypted under key {services.keyring.primary_key_id}."
        )
        await _check_round_trip(services)
        render_status(await collect_status(services, 30), 30)
    finally:
        await services.close()


async def _store_samples(services: Services, users: int) -> int:
    providers = sample_providers()
    samples = sample_connections(providers, users, services.keyring, services.clock)
    async with services.unit_of_work() as work:
        for provider in providers:
            await work.providers.save(provider)
        for sample in samples:
            connection = sample.connection
            await work.connections.save(connection)
            await work.events.append(
                ConnectionEvent.record(
                    id=new_id(),
                    connection=connection,
                    event_type=_EVENT_OF_STATUS[connection.status],
                    occurred_at=services.clock.now(),
                    status_before=None,
                    reason=connection.status_reason,
                    actor="demo",
                )
            )
            if sample.access_token and connection.credentials:
                # The stored bytes must never contain the plaintext token.
                assert sample.access_token.encode() not in (
                    connection.credentials.encrypted_data
                )
    return len(samples)


async def _check_round_trip(services: Services) -> None:
    async with services.unit_of_work(readonly=True) as work:
        active = await work.connections.list_connections(status=ConnectionStatus.ACTIVE)
    for connection in active:
        credentials = connection.credentials
        assert credentials is not None
        if credentials.credential_type is CredentialType.API_KEY:
            open_api_key(services.keyring, connection)
        else:
            open_token_set(services.keyring, connection)
    console.print(f"Decrypted the credentials of {len(active)} active connections.")
