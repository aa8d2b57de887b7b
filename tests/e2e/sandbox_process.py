"""Start the sandbox authorization server as a subprocess for end-to-end tests.

`running_sandbox(**settings)` spawns `python -m linkvault.sandbox` in its own
process group, waits for its ready line, and stops the whole group on exit.
The returned handle reaches the admin API and keeps everything the process
wrote, so tests can check that no secret reached its output.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import httpx

from linkvault.sandbox import READY_PREFIX, SandboxSettings, settings_to_argv
from linkvault.sandbox.admin import ADMIN_TOKEN_HEADER
from linkvault.sandbox.cli import ADMIN_TOKEN_ENV

# Seconds to wait for the ready line; a cold interpreter imports Flask and Authlib.
READY_TIMEOUT = 30.0
# Seconds to wait for a clean exit after SIGTERM before sending SIGKILL.
STOP_TIMEOUT = 10.0


class SandboxHandle:
    """A running sandbox process: its URL, admin API and captured output."""

    def __init__(
        self, process: subprocess.Popen[str], settings: SandboxSettings
    ) -> None:
        self.process = process
        self.settings = settings
        self.url = ""
        self.returncode: int | None = None
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._ready: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            _start_reader(process.stdout, self._stdout, self._ready),
            _start_reader(process.stderr, self._stderr, None),
        ]

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait for the ready line and record the URL it announces.

        Raises:
            RuntimeError: the process exited or stayed silent for `timeout`
                seconds; the message contains its stderr.
        """
        try:
            line = self._ready.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.stop()
            raise RuntimeError(
                f"The sandbox did not print {READY_PREFIX!r} within {timeout} s "
                f"(exit code {self.returncode}). Its stderr:\n{self.output()}"
            )

        self.url = line.removeprefix(READY_PREFIX).strip()

    def client(self, **options: Any) -> httpx.Client:
        """Open an HTTP client on the sandbox that ignores proxy variables."""
        return httpx.Client(base_url=self.url, trust_env=False, **options)

    def admin(
        self, method: str, path: str, *, json: Any = None, **params: str
    ) -> httpx.Response:
        """Call the admin API at `/_sandbox/<path>`, with the admin token if set."""
        headers = {}
        if self.settings.admin_token is not None:
            headers[ADMIN_TOKEN_HEADER] = self.settings.admin_token.get_secret_value()

        with self.client() as client:
            return client.request(
                method, f"/_sandbox/{path}", json=json, params=params, headers=headers
            )

    def stats(self) -> dict[str, int]:
        """Return the sandbox counters."""
        return dict(self._checked(self.admin("GET", "stats")).json())

    def grants(self, user: str | None = None) -> list[dict[str, Any]]:
        """Return the grant reports, optionally of one user."""
        params = {} if user is None else {"user": user}
        return list(self._checked(self.admin("GET", "grants", **params)).json())

    def add_fault(self, **fault: Any) -> None:
        """Queue a fault for the next token requests."""
        self._checked(self.admin("POST", "faults", json=fault))

    def clear_faults(self) -> int:
        """Drop pending faults and return how many were pending."""
        return int(self._checked(self.admin("DELETE", "faults")).json()["cleared"])

    def revoke_user(self, user: str) -> int:
        """Revoke every grant of `user` and return how many were active."""
        response = self.admin("POST", "revoke-user", json={"user": user})
        return int(self._checked(response).json()["grants_revoked"])

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox clock forward by `seconds`."""
        self._checked(self.admin("POST", "clock", json={"advance_seconds": seconds}))

    def reset(self) -> None:
        """Forget every grant, token, counter, fault and clock offset."""
        self._checked(self.admin("POST", "reset"))

    def stop(self) -> int:
        """Send SIGTERM to the process group, then SIGKILL if it lingers.

        Returns the exit code; later calls return the same code.
        """
        if self.returncode is None:
            self.returncode = _terminate_group(self.process)
            for reader in self._readers:
                reader.join(timeout=STOP_TIMEOUT)

        return self.returncode

    def output(self) -> str:
        """Return everything the process wrote so far, stdout then stderr."""
        return "".join(self._stdout) + "".join(self._stderr)

    @staticmethod
    def _checked(response: httpx.Response) -> httpx.Response:
        response.raise_for_status()
        return response


@contextmanager
def running_sandbox(
    *, log_level: str = "DEBUG", **settings: Any
) -> Iterator[SandboxHandle]:
    """Run a sandbox subprocess built from `SandboxSettings(**settings)`.

    The port defaults to 0, so each sandbox gets a free port. Logging defaults
    to DEBUG, so leak checks see the most output.
    """
    sandbox_settings = SandboxSettings(**settings)
    command = [
        sys.executable,
        "-m",
        "linkvault.sandbox",
        *settings_to_argv(sandbox_settings),
        f"--log-level={log_level}",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=_environment(sandbox_settings),
    )
    handle = SandboxHandle(process, sandbox_settings)
    try:
        handle.wait_ready()
        yield handle
    finally:
        handle.stop()


def _environment(settings: SandboxSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(ADMIN_TOKEN_ENV, None)
    if settings.admin_token is not None:
        env[ADMIN_TOKEN_ENV] = settings.admin_token.get_secret_value()
    return env


def _start_reader(
    stream: IO[str] | None,
    lines: list[str],
    ready: queue.Queue[str | None] | None,
) -> threading.Thread:
    def read() -> None:
        assert stream is not None
        for line in stream:
            lines.append(line)
            if ready is not None and line.startswith(READY_PREFIX):
                ready.put(line)
        if ready is not None:
            # End of output: wake a waiter that is still expecting the ready line.
            ready.put(None)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _terminate_group(process: subprocess.Popen[str]) -> int:
    _signal_group(process, signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        return process.wait(timeout=STOP_TIMEOUT)


def _signal_group(process: subprocess.Popen[str], signum: signal.Signals) -> None:
    # The group is gone when the process already exited and was reaped.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
