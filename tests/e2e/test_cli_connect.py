"""`linkvault connect`, `reconnect` and `disconnect` against the sandbox process."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sandbox_process import SandboxHandle
from typer.testing import CliRunner

from linkvault.bootstrap import build
from linkvault.config import load_settings
from linkvault.domain import (
    ConnectionStatus,
    CredentialType,
    Provider,
    ProviderConnection,
)
from linkvault.entrypoints.cli import app
from linkvault.ids import new_id

pytestmark = pytest.mark.e2e


@pytest.fixture
def configured(
    cli_workspace: Path, monkeypatch: pytest.MonkeyPatch, sandbox: SandboxHandle
) -> Path:
    tmp_path = cli_workspace
    monkeypatch.setenv("SANDBOX_CLIENT_SECRET", "sandbox-secret")
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    config = tmp_path / "linkvault.toml"
    asyncio.run(_add_providers(config, sandbox.url))
    return config


async def _add_providers(config: Path, url: str) -> None:
    services = build(load_settings(config))
    try:
        async with services.unit_of_work() as work:
            await work.providers.save(
                Provider(
                    id=new_id(),
                    slug="sandbox",
                    name="Sandbox",
                    credential_type=CredentialType.OAUTH2,
                    authorization_url=f"{url}/authorize",
                    token_url=f"{url}/token",
                    revocation_url=f"{url}/revoke",
                    client_id="sandbox-confidential",
                    client_secret_env="SANDBOX_CLIENT_SECRET",
                )
            )
            await work.providers.save(
                Provider(
                    id=new_id(),
                    slug="prices",
                    name="Prices",
                    credential_type=CredentialType.API_KEY,
                )
            )
    finally:
        await services.close()


def _connections(config: Path, user: uuid.UUID) -> list[ProviderConnection]:
    async def fetch() -> list[ProviderConnection]:
        services = build(load_settings(config))
        try:
            async with services.unit_of_work(readonly=True) as work:
                return await work.connections.find_by_user_id(user)
        finally:
            await services.close()

    return asyncio.run(fetch())


def _connect_args(user: uuid.UUID) -> list[str]:
    return [
        "connect",
        "sandbox",
        "--user",
        str(user),
        "--mode",
        "follow",
        "--login-hint",
        str(user),
        "--timeout",
        "30",
    ]


def test_connect_then_disconnect_twice(
    configured: Path, sandbox: SandboxHandle
) -> None:
    runner = CliRunner()
    user = uuid.uuid4()

    connected = runner.invoke(app, _connect_args(user))
    (connection,) = _connections(configured, user)
    first = runner.invoke(app, ["connections", "disconnect", str(connection.id)])
    second = runner.invoke(app, ["connections", "disconnect", str(connection.id)])

    assert connected.exit_code == 0, connected.output
    assert "is active" in connected.output
    assert connection.status is ConnectionStatus.ACTIVE
    assert first.exit_code == 0, first.output
    assert "revoked at the provider" in first.output
    assert second.exit_code == 0, second.output
    assert "not revoked" in second.output
    assert sandbox.stats()["revocations"] == 1


def test_reconnect_keeps_id(configured: Path) -> None:
    runner = CliRunner()
    user = uuid.uuid4()
    runner.invoke(app, _connect_args(user))
    (connection,) = _connections(configured, user)

    result = runner.invoke(
        app,
        [
            "connections",
            "reconnect",
            str(connection.id),
            "--mode",
            "follow",
            "--login-hint",
            str(user),
        ],
    )

    assert result.exit_code == 0, result.output
    (again,) = _connections(configured, user)
    assert again.id == connection.id
    assert again.version > connection.version


def test_connect_api_key_from_env(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRICES_KEY", "pk_live_example")
    user = uuid.uuid4()

    result = CliRunner().invoke(
        app, ["connect", "prices", "--user", str(user), "--api-key-env", "PRICES_KEY"]
    )

    assert result.exit_code == 0, result.output
    (connection,) = _connections(configured, user)
    assert connection.status is ConnectionStatus.ACTIVE
    assert connection.credentials is not None
    assert b"pk_live_example" not in connection.credentials.encrypted_data


def test_connect_unknown_provider(configured: Path) -> None:
    result = CliRunner().invoke(app, ["connect", "nope", "--user", str(uuid.uuid4())])

    assert result.exit_code == 1
    assert "Provider nope was not found" in result.output


def test_connect_malformed_user(configured: Path) -> None:
    result = CliRunner().invoke(app, ["connect", "sandbox", "--user", "bob"])

    assert result.exit_code == 1
    assert "'bob' is not a valid UUID" in result.output


def test_connect_without_client_secret(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SANDBOX_CLIENT_SECRET")

    result = CliRunner().invoke(app, _connect_args(uuid.uuid4()))

    assert result.exit_code == 1
    assert "SANDBOX_CLIENT_SECRET" in result.output
    assert "Traceback" not in result.output


def test_disconnect_unknown_connection(configured: Path) -> None:
    missing = uuid.uuid4()

    result = CliRunner().invoke(app, ["connections", "disconnect", str(missing)])

    assert result.exit_code == 1
    assert "was not found" in result.output
