"""`linkvault demo` as a user runs it: a subprocess with DEBUG logs everywhere.

The demo runs once for the module. The tests read what it printed, every log
file it wrote (its own, the sandbox's and each worker's), its database and its
key file, and check the verdict and that no token reached a log or an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from linkvault.application.credentials import open_token_set
from linkvault.bootstrap import build
from linkvault.config import load_settings
from linkvault.domain import ConnectionStatus
from linkvault.sandbox.settings import DEFAULT_CONFIDENTIAL_CLIENT_SECRET

pytestmark = pytest.mark.e2e

USERS = 12
# Seconds the workers run: 20-second access tokens come due about 10 seconds
# after they are issued, so every connection is refreshed at least once.
DURATION = 25
# Seconds the whole demo may take before the test stops it.
DEMO_TIMEOUT = 240
CLI = "from linkvault.entrypoints.cli import main; main()"

# The sandbox makes access tokens of 42 and refresh tokens (and authorization
# codes) of 48 characters, drawn from ASCII letters and digits (Authlib's
# `generate_token`). A run of exactly that many such characters is token-shaped.
TOKEN_SHAPE = re.compile(
    r"(?<![A-Za-z0-9])(?:[A-Za-z0-9]{42}|[A-Za-z0-9]{48})(?![A-Za-z0-9])"
)
LOG_LINE = re.compile(r"^\s+(\S+) log: (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    exit_code: int
    stdout: str
    stderr: str

    def log_files(self) -> dict[str, Path]:
        """Return the log files that the demo printed, by process name."""
        return {name: Path(path) for name, path in LOG_LINE.findall(self.stdout)}

    def outputs(self) -> dict[str, str]:
        """Return stdout, stderr and every log file in the demo's folder, by name."""
        texts = {"stdout": self.stdout, "stderr": self.stderr}
        for path in sorted(self.folder.glob("*.log")):
            texts[path.name] = path.read_text()
        return texts


def lines_where(texts: dict[str, str], found: Callable[[str], bool]) -> list[str]:
    """Return `name:line` of each line where `found` is true.

    Failures name places, never the matched text: it would be a secret.
    """
    return [
        f"{name}:{number}"
        for name, text in texts.items()
        for number, line in enumerate(text.splitlines(), start=1)
        if found(line)
    ]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    folder = tmp_path_factory.mktemp("demo") / "run"
    command = [
        sys.executable,
        "-c",
        CLI,
        "demo",
        f"--users={USERS}",
        f"--duration={DURATION}",
        "--log-level=DEBUG",
        f"--dir={folder}",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKVAULT_")}
    env["COLUMNS"] = "120"
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=DEMO_TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the demo stop its sandbox and workers first.
        os.killpg(process.pid, signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
        pytest.fail(f"The demo ran over {DEMO_TIMEOUT} s.\n{stdout}\n{stderr}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return DemoResult(folder, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def stored_tokens(demo: DemoResult) -> set[str]:
    """Return the access and refresh tokens of every active connection."""

    async def read() -> set[str]:
        services = build(load_settings(demo.folder / "linkvault.toml"))
        try:
            async with services.unit_of_work(readonly=True) as work:
                active = await work.connections.list_connections(
                    status=ConnectionStatus.ACTIVE
                )
            tokens: set[str] = set()
            for connection in active:
                token_set = open_token_set(services.keyring, connection)
                tokens.add(token_set.access_token)
                if token_set.refresh_token:
                    tokens.add(token_set.refresh_token)
            return tokens
        finally:
            await services.close()

    return asyncio.run(read())


@pytest.fixture(scope="module")
def events(demo: DemoResult) -> dict[str, str]:
    """Return the `connection_events` table as text, one row per line."""
    with contextlib.closing(sqlite3.connect(demo.folder / "linkvault.db")) as db:
        rows = db.execute("SELECT * FROM connection_events").fetchall()
    lines = [" ".join(str(value) for value in row) for row in rows]
    return {"connection_events": "\n".join(lines)}


def test_demo_exits_cleanly(demo: DemoResult) -> None:
    assert demo.exit_code == 0, demo.stdout + demo.stderr
    assert "Passed:" in demo.stdout


def test_demo_sees_no_reuse(demo: DemoResult) -> None:
    assert re.search(r"reuse detections at the sandbox\W+0\W+ok", demo.stdout)


def test_demo_finds_every_token_current(demo: DemoResult) -> None:
    current = rf"holding the current refresh token\W+{USERS} of {USERS}\W+ok"
    assert re.search(current, demo.stdout)
    assert re.search(
        rf"connections still active\W+{USERS} of {USERS}\W+ok", demo.stdout
    )


def test_demo_refreshes_tokens(demo: DemoResult) -> None:
    passed = re.search(r"Passed: (\d+) refreshes", demo.stdout)

    assert passed is not None, demo.stdout
    assert int(passed.group(1)) > 0


def test_demo_prints_log_paths(demo: DemoResult) -> None:
    logs = demo.log_files()

    assert set(logs) == {"demo", "sandbox", "worker-1", "worker-2"}
    for path in logs.values():
        assert path.is_file()
        assert path.parent == demo.folder


def test_demo_logs_at_debug(demo: DemoResult) -> None:
    for name, path in demo.log_files().items():
        assert " DEBUG " in path.read_text(), name


def test_stored_tokens_absent_from_output(
    demo: DemoResult, stored_tokens: set[str]
) -> None:
    def has_token(line: str) -> bool:
        return any(token in line for token in stored_tokens)

    assert len(stored_tokens) == 2 * USERS
    assert lines_where(demo.outputs(), has_token) == []


def test_stored_tokens_absent_from_events(
    events: dict[str, str], stored_tokens: set[str]
) -> None:
    def has_token(line: str) -> bool:
        return any(token in line for token in stored_tokens)

    assert events["connection_events"]
    assert lines_where(events, has_token) == []


def test_no_token_shaped_text_in_output(demo: DemoResult) -> None:
    # Also catches tokens rotated away during the run, which the database no
    # longer contains.
    def token_shaped(line: str) -> bool:
        return TOKEN_SHAPE.search(line) is not None

    assert lines_where(demo.outputs(), token_shaped) == []


def test_no_token_shaped_text_in_events(events: dict[str, str]) -> None:
    def token_shaped(line: str) -> bool:
        return TOKEN_SHAPE.search(line) is not None

    assert lines_where(events, token_shaped) == []


def test_client_secret_absent_from_output(demo: DemoResult) -> None:
    def has_secret(line: str) -> bool:
        return DEFAULT_CONFIDENTIAL_CLIENT_SECRET in line

    assert lines_where(demo.outputs(), has_secret) == []
