"""`linkvault keys rotate` over 10,000 connections, interrupted and resumed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from factories import make_provider
from linkvault.adapters.crypto import load_keyring
from linkvault.adapters.sqlalchemy.encrypted_columns import encrypted_columns
from linkvault.adapters.sqlalchemy.tables import provider_connections
from linkvault.application.rewrap import verify
from linkvault.bootstrap import build
from linkvault.config import load_settings
from linkvault.domain import TokenSet
from linkvault.entrypoints.cli import app
from linkvault.ids import new_id
from linkvault.ports.cipher import connection_context

pytestmark = pytest.mark.e2e

ROWS = 10_000
BATCH = 500
# Progress lines to read before the first run is killed: about halfway.
KILL_AFTER_LINES = 8


@pytest.fixture
def config(cli_workspace: Path) -> Path:
    tmp_path = cli_workspace
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    path = tmp_path / "linkvault.toml"
    asyncio.run(_fill(path))
    added = runner.invoke(app, ["keys", "add", "--id", "rotated", "--primary"])
    assert added.exit_code == 0, added.output
    return path


async def _fill(config: Path) -> None:
    services = build(load_settings(config))
    provider = make_provider("bulk")
    now = datetime.now(UTC)
    rows = []
    for index in range(ROWS):
        connection_id, user_id = new_id(), uuid.uuid4()
        tokens = TokenSet(
            access_token=f"access-{index}",
            refresh_token=f"refresh-{index}",
            expires_at=now + timedelta(hours=1),
        )
        blob = services.keyring.encrypt(
            tokens.to_json(), connection_context(connection_id, user_id)
        )
        rows.append(
            {
                "id": connection_id,
                "user_id": user_id,
                "provider_id": provider.id,
                "provider_slug": provider.slug,
                "status": "active",
                "credentials": blob,
                "credential_type": "oauth2",
                "credentials_expires_at": tokens.expires_at,
                "refresh_failures": 0,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    try:
        async with services.unit_of_work() as work:
            await work.providers.save(provider)
        async with services.database.session() as session:
            await session.execute(sa.insert(provider_connections), rows)
    finally:
        await services.close()


def _rotate(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "linkvault",
            "--config",
            str(config),
            "keys",
            "rotate",
            "--batch-size",
            str(BATCH),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )


async def _key_counts(config: Path) -> dict[str, int]:
    services = build(load_settings(config))
    try:
        keyring = load_keyring(key_file=services.settings.resolved_key_file)
        report = await verify(keyring, encrypted_columns(services.database))
        counts = dict(report.columns[0].key_ids)
        counts["undecryptable"] = report.columns[0].undecryptable
        return counts
    finally:
        await services.close()


def test_rotate_resumes_after_kill(config: Path) -> None:
    first = _rotate(config)
    progress = []
    assert first.stdout is not None
    for line in first.stdout:
        if line.startswith("Rewrapped"):
            progress.append(line.strip())
        if len(progress) == KILL_AFTER_LINES:
            os.killpg(first.pid, signal.SIGKILL)
            break
    first.wait(timeout=60)
    halfway = asyncio.run(_key_counts(config))

    second = _rotate(config)
    output, _ = second.communicate(timeout=600)
    done = asyncio.run(_key_counts(config))

    assert progress[0] == f"Rewrapped {BATCH}/{ROWS} rows"
    assert first.returncode == -signal.SIGKILL
    assert 0 < halfway.get("rotated", 0) < ROWS
    assert second.returncode == 0, output
    assert f"Rewrapped {ROWS}/{ROWS} rows" in output
    assert "Every stored secret decrypts" in output
    assert done.get("rotated") == ROWS
    assert done["undecryptable"] == 0
