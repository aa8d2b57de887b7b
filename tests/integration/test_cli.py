"""The command line through Typer's runner, on SQLite files in a temp folder."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkvault.entrypoints.cli import app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "LINKVAULT_CONFIG",
        "LINKVAULT_KEYS",
        "LINKVAULT_KEY_FILE",
        "LINKVAULT_DATABASE_URL",
        "LINKVAULT_LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def configured(runner: CliRunner, tmp_path: Path) -> Path:
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    return tmp_path / "linkvault.toml"


def test_init_writes_private_key_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["init"])

    assert result.exit_code == 0, result.output
    key_file = tmp_path / "linkvault.keys"
    assert (tmp_path / "linkvault.toml").is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert str(key_file) in result.output.replace("\n", "")


def test_init_twice_keeps_existing_files(runner: CliRunner, tmp_path: Path) -> None:
    runner.invoke(app, ["init"])
    key_before = (tmp_path / "linkvault.keys").read_bytes()

    result = runner.invoke(app, ["init"])

    assert result.exit_code == 1
    assert "already exists" in result.output
    assert (tmp_path / "linkvault.keys").read_bytes() == key_before


def test_db_upgrade_reports_revision(configured: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert "revision 0001" in result.output


def test_demo_prints_status_table(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["demo", "--dir", str(tmp_path / "demo"), "--users", "8"]
    )

    assert result.exit_code == 0, result.output
    assert "active" in result.output
    assert "total" in result.output
    assert (tmp_path / "demo" / "linkvault.db").is_file()


def test_no_key_configured_fails_clearly(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "linkvault.toml").write_text('log_level = "INFO"\n')

    result = runner.invoke(app, ["keys", "list"])

    assert result.exit_code == 1
    assert "No encryption key is configured" in result.output
    assert "linkvault init" in result.output
    assert "Traceback" not in result.output


def test_rotate_without_key_fails_clearly(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "linkvault.toml").write_text('log_level = "INFO"\n')
    runner.invoke(app, ["db", "upgrade"])

    result = runner.invoke(app, ["keys", "rotate"])

    assert result.exit_code == 1
    assert "No encryption key is configured" in result.output


def test_malformed_uuid_rejected(configured: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["connections", "show", "not-a-uuid"])

    assert result.exit_code == 1
    assert "'not-a-uuid' is not a valid UUID" in result.output


def test_unknown_connection_not_found(configured: Path, runner: CliRunner) -> None:
    missing = uuid.uuid4()

    result = runner.invoke(app, ["connections", "show", str(missing)])

    assert result.exit_code == 1
    assert f"Connection {missing} was not found" in result.output


def test_unknown_provider_filter_rejected(configured: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["connections", "list", "--provider", "nope"])

    assert result.exit_code == 1
    assert "Provider nope was not found" in result.output


def test_unreachable_database_fails_clearly(runner: CliRunner) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/none"

    result = runner.invoke(app, ["--database-url", url, "status"])

    assert result.exit_code == 1
    assert "unavailable" in result.output
    assert "Traceback" not in result.output


def test_unsupported_database_url_rejected(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--database-url", "mysql://x/y", "status"])

    assert result.exit_code == 1
    assert "not supported" in result.output


def test_missing_config_file_rejected(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--config", "absent.toml", "status"])

    assert result.exit_code == 1
    assert "absent.toml does not exist" in result.output


def demo_folder(runner: CliRunner, tmp_path: Path) -> Path:
    folder = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--dir", str(folder), "--users", "10"])
    assert result.exit_code == 0, result.output
    return folder / "linkvault.toml"


def test_connections_list_show_delete(runner: CliRunner, tmp_path: Path) -> None:
    config = demo_folder(runner, tmp_path)

    listed = runner.invoke(
        app, ["--config", str(config), "connections", "list", "--status", "active"]
    )
    ids = _full_ids(config)
    shown = runner.invoke(app, ["--config", str(config), "connections", "show", ids[0]])
    deleted = runner.invoke(
        app, ["--config", str(config), "connections", "delete", ids[0], "--yes"]
    )
    again = runner.invoke(
        app, ["--config", str(config), "connections", "delete", ids[0], "--yes"]
    )

    assert listed.exit_code == 0, listed.output
    assert "active" in listed.output
    assert shown.exit_code == 0, shown.output
    assert "History" in shown.output
    assert "encrypted_data=<" in shown.output
    assert deleted.exit_code == 0, deleted.output
    assert again.exit_code == 1
    assert "was not found" in again.output


def _full_ids(config: Path) -> list[str]:
    import asyncio

    from linkvault.bootstrap import build
    from linkvault.config import load_settings
    from linkvault.domain import ConnectionStatus

    async def fetch() -> list[str]:
        services = build(load_settings(config))
        try:
            async with services.unit_of_work(readonly=True) as work:
                rows = await work.connections.list_connections(
                    status=ConnectionStatus.ACTIVE
                )
            return [str(row.id) for row in rows]
        finally:
            await services.close()

    return asyncio.run(fetch())


def test_keys_add_then_list(configured: Path, runner: CliRunner) -> None:
    added = runner.invoke(app, ["keys", "add", "--id", "second"])
    listed = runner.invoke(app, ["keys", "list"])

    assert added.exit_code == 0, added.output
    assert "second" in listed.output


def test_keys_rotate_rewraps_and_verifies(runner: CliRunner, tmp_path: Path) -> None:
    config = demo_folder(runner, tmp_path)

    result = runner.invoke(
        app, ["--config", str(config), "keys", "rotate", "--new-key"]
    )

    assert result.exit_code == 0, result.output
    assert "Rewrapped" in result.output
    assert "Every stored secret decrypts" in result.output
    status = runner.invoke(app, ["--config", str(config), "status"])
    assert status.exit_code == 0, status.output


def test_status_shows_counts(runner: CliRunner, tmp_path: Path) -> None:
    config = demo_folder(runner, tmp_path)

    result = runner.invoke(app, ["--config", str(config), "status", "--minutes", "60"])

    assert result.exit_code == 0, result.output
    assert "disconnected" in result.output
    assert "expiring within 60 minutes" in result.output
