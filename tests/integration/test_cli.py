"""The command line through Typer's runner, on SQLite files in a temp folder."""

from __future__ import annotations

import json
import re
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkvault.entrypoints.cli import app

SETTINGS_VARIABLES = (
    "LINKVAULT_CONFIG",
    "LINKVAULT_KEYS",
    "LINKVAULT_KEY_FILE",
    "LINKVAULT_DATABASE_URL",
    "LINKVAULT_LOG_LEVEL",
)


@dataclass(frozen=True)
class DemoRun:
    folder: Path
    exit_code: int
    output: str


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def clean_environment(cli_workspace: Path) -> None:
    """Run every test in its own folder without LINKVAULT_* variables."""


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One short demo run (sandbox and two worker processes) for the module."""
    folder = tmp_path_factory.mktemp("demo-run")
    arguments = ["demo", "--dir", str(folder), "--users", "5", "--duration", "8"]
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in SETTINGS_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        result = CliRunner().invoke(app, arguments)
    return DemoRun(folder, result.exit_code, result.output)


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


def test_demo_passes_its_checks(demo_run: DemoRun) -> None:
    output = demo_run.output

    assert demo_run.exit_code == 0, output
    assert re.search(r"reuse detections at the sandbox\W+0\W+ok", output)
    assert re.search(r"holding the current refresh token\W+5 of 5\W+ok", output)
    assert re.search(r"connections still active\W+5 of 5\W+ok", output)
    assert re.search(r"workers stopped cleanly\W+2 of 2\W+ok", output)
    assert "Passed:" in output


def test_demo_lists_its_log_files(demo_run: DemoRun) -> None:
    for name in ("demo", "sandbox", "worker-1", "worker-2"):
        log = demo_run.folder / f"{name}.log"
        assert f"{name} log: {log}" in demo_run.output
        assert log.is_file()
    assert (demo_run.folder / "linkvault.db").is_file()


def test_demo_workers_write_stats_files(demo_run: DemoRun) -> None:
    for name in ("worker-1", "worker-2"):
        document = json.loads((demo_run.folder / f"{name}.stats.json").read_text())
        assert document["running"] is False
        assert isinstance(document["outcomes"], dict)
        assert set(document["latency_seconds"]) == {"samples", "p50", "p95"}


def test_demo_rejects_folder_of_earlier_run(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "linkvault.db").write_bytes(b"")

    result = runner.invoke(app, ["demo", "--dir", str(tmp_path)])

    assert result.exit_code == 1
    assert "exists from an earlier run" in result.output
    assert not (tmp_path / "sandbox.log").exists()


def test_worker_writes_stats_file_on_exit(configured: Path, runner: CliRunner) -> None:
    stats_file = configured.parent / "stats.json"

    result = runner.invoke(app, ["worker", "--once", "--stats-file", str(stats_file)])

    assert result.exit_code == 0, result.output
    document = json.loads(stats_file.read_text())
    assert document["running"] is False
    assert document["outcomes"] == {}
    assert document["latency_seconds"] == {"samples": 0, "p50": None, "p95": None}


def test_worker_rejects_unwritable_stats_file(
    configured: Path, runner: CliRunner
) -> None:
    stats_file = configured.parent / "missing-folder" / "stats.json"

    result = runner.invoke(app, ["worker", "--once", "--stats-file", str(stats_file)])

    assert result.exit_code == 1
    assert "cannot be written" in result.output
    assert "WORKER READY" not in result.output


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


def demo_folder(demo_run: DemoRun, tmp_path: Path) -> Path:
    """Copy the module's demo folder, so a test may change its database."""
    folder = tmp_path / "demo"
    shutil.copytree(demo_run.folder, folder)
    return folder / "linkvault.toml"


def test_connections_list_show_delete(
    demo_run: DemoRun, runner: CliRunner, tmp_path: Path
) -> None:
    config = demo_folder(demo_run, tmp_path)

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


def test_keys_rotate_rewraps_and_verifies(
    demo_run: DemoRun, runner: CliRunner, tmp_path: Path
) -> None:
    config = demo_folder(demo_run, tmp_path)

    result = runner.invoke(
        app, ["--config", str(config), "keys", "rotate", "--new-key"]
    )

    assert result.exit_code == 0, result.output
    assert "Rewrapped" in result.output
    assert "Every stored secret decrypts" in result.output
    status = runner.invoke(app, ["--config", str(config), "status"])
    assert status.exit_code == 0, status.output


def test_status_shows_counts(
    demo_run: DemoRun, runner: CliRunner, tmp_path: Path
) -> None:
    config = demo_folder(demo_run, tmp_path)

    result = runner.invoke(app, ["--config", str(config), "status", "--minutes", "60"])

    assert result.exit_code == 0, result.output
    assert "disconnected" in result.output
    assert "expiring within 60 minutes" in result.output
