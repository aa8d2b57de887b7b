"""Error paths and quick runs of `worker`, `sandbox`, `connect` and `reconnect`."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factories import make_provider
from linkvault.bootstrap import build
from linkvault.config import load_settings
from linkvault.entrypoints.cli import app


@pytest.fixture(autouse=True)
def clean_environment(cli_workspace: Path) -> None:
    """Run every test in its own folder without LINKVAULT_* variables."""


@pytest.fixture
def configured(tmp_path: Path) -> Path:
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    config = tmp_path / "linkvault.toml"
    asyncio.run(_add_provider(config))
    return config


async def _add_provider(config: Path) -> None:
    services = build(load_settings(config))
    try:
        async with services.unit_of_work() as work:
            await work.providers.save(make_provider("sandbox"))
    finally:
        await services.close()


def test_worker_once_with_nothing_due(configured: Path) -> None:
    result = CliRunner().invoke(app, ["worker", "--once"])

    assert result.exit_code == 0, result.output
    assert "WORKER READY" in result.output
    assert "Worker finished" in result.output


def test_worker_unreachable_database(configured: Path) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/none"

    result = CliRunner().invoke(app, ["--database-url", url, "worker", "--once"])

    assert result.exit_code == 1
    assert "unavailable" in result.output
    assert "Traceback" not in result.output


def test_worker_rejects_bad_batch_size(configured: Path) -> None:
    result = CliRunner().invoke(app, ["worker", "--once", "--batch-size", "0"])

    assert result.exit_code == 2
    assert "batch-size" in result.output


def test_sandbox_rejects_public_host() -> None:
    result = CliRunner().invoke(app, ["sandbox", "--host", "192.0.2.1"])

    assert result.exit_code != 0


def test_connect_without_key(configured: Path, tmp_path: Path) -> None:
    (tmp_path / "linkvault.keys").unlink()

    result = CliRunner().invoke(
        app, ["connect", "sandbox", "--user", str(uuid.uuid4())]
    )

    assert result.exit_code == 1
    assert "linkvault init" in result.output
    assert "Traceback" not in result.output


def test_reconnect_malformed_uuid(configured: Path) -> None:
    result = CliRunner().invoke(app, ["connections", "reconnect", "12"])

    assert result.exit_code == 1
    assert "'12' is not a valid UUID" in result.output


def test_reconnect_unknown_connection(configured: Path) -> None:
    missing = uuid.uuid4()

    result = CliRunner().invoke(app, ["connections", "reconnect", str(missing)])

    assert result.exit_code == 1
    assert "was not found" in result.output


def test_disconnect_malformed_uuid(configured: Path) -> None:
    result = CliRunner().invoke(app, ["connections", "disconnect", "x"])

    assert result.exit_code == 1
    assert "'x' is not a valid UUID" in result.output


def test_connections_list_unreachable_database() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/none"

    result = CliRunner().invoke(app, ["--database-url", url, "connections", "list"])

    assert result.exit_code == 1
    assert "unavailable" in result.output


def test_worker_without_key(tmp_path: Path) -> None:
    (tmp_path / "linkvault.toml").write_text('log_level = "INFO"\n')

    result = CliRunner().invoke(app, ["worker", "--once"])

    assert result.exit_code == 1
    assert "No encryption key is configured" in result.output


def test_db_upgrade_unreachable_database() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/none"

    result = CliRunner().invoke(app, ["--database-url", url, "db", "upgrade"])

    assert result.exit_code == 1
    assert "unavailable" in result.output
    assert "Traceback" not in result.output


def test_keys_add_without_key_file(tmp_path: Path) -> None:
    (tmp_path / "linkvault.toml").write_text('log_level = "INFO"\n')

    result = CliRunner().invoke(app, ["keys", "add"])

    assert result.exit_code == 1
    assert "No key file is configured" in result.output


def test_demo_rejects_bad_user_count() -> None:
    result = CliRunner().invoke(app, ["demo", "--users", "0"])

    assert result.exit_code == 2
