"""Start `linkvault worker` processes for end-to-end tests.

`start_worker` spawns `python -m linkvault worker` with a config file, in its
own process group. `running_workers` starts several, waits for each one's
`WORKER READY <owner>` line, and stops every group on exit. A handle keeps
everything its process wrote, so tests can read the log lines and check that
no secret reached them.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from linkvault.entrypoints.cli.worker import READY_PREFIX

# Seconds to wait for the ready line; a cold interpreter imports SQLAlchemy,
# Typer and httpx, and two cores may be busy with other workers.
READY_TIMEOUT = 60.0
# Seconds a stopping worker gets to finish in-flight refreshes and exit.
STOP_TIMEOUT = 30.0


class WorkerHandle:
    """A running worker process: its lease owner id and captured output."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.owner = ""
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._ready: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            _start_reader(process.stdout, self._stdout, self._ready),
            _start_reader(process.stderr, self._stderr, None),
        ]

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait for the ready line and record the owner id it announces.

        Raises:
            RuntimeError: The process exited or stayed silent for `timeout`
                seconds; the message contains its output.
        """
        try:
            line = self._ready.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.stop()
            raise RuntimeError(
                f"The worker did not print {READY_PREFIX!r} within {timeout} s "
                f"(exit code {self.process.returncode}). Its output:\n"
                f"{self.output()}"
            )

        self.owner = line.removeprefix(READY_PREFIX).strip()

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """Send SIGTERM to the process group and return the exit code.

        Raises:
            subprocess.TimeoutExpired: The worker did not exit within
                `timeout` seconds; `stop` still kills it.
        """
        _signal_group(self.process, signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        """Send SIGKILL to the process group, as a crash or an OOM kill would."""
        _signal_group(self.process, signal.SIGKILL)
        return self.wait(STOP_TIMEOUT)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and its output to be read."""
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=STOP_TIMEOUT)

        return code

    def stop(self) -> None:
        """Stop the process group if it still runs: SIGTERM, then SIGKILL."""
        if self.process.poll() is not None:
            return
        try:
            self.terminate()
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        """Return everything the process wrote so far, stdout then stderr."""
        return "".join(self._stdout) + "".join(self._stderr)


def start_worker(
    config: Path,
    *options: str,
    environ: Mapping[str, str],
    log_level: str = "INFO",
) -> WorkerHandle:
    """Spawn `linkvault --config CONFIG worker OPTIONS` without waiting for it.

    `LINKVAULT_*` variables of the test process are dropped, because they would
    override the config file that the test and its workers share.
    """
    command = [
        sys.executable,
        "-m",
        "linkvault",
        "--config",
        str(config),
        "--log-level",
        log_level,
        "worker",
        *options,
    ]
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LINKVAULT_")
    }
    env.update(environ)
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )
    return WorkerHandle(process)


@contextmanager
def running_workers(
    config: Path,
    count: int,
    *options: str,
    environ: Mapping[str, str],
    log_level: str = "INFO",
) -> Iterator[list[WorkerHandle]]:
    """Run `count` workers, each ready before the body starts, stopped after it."""
    workers: list[WorkerHandle] = []
    try:
        for _ in range(count):
            workers.append(
                start_worker(config, *options, environ=environ, log_level=log_level)
            )
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.stop()


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
            # End of output: wake a waiter that still expects the ready line.
            ready.put(None)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _signal_group(process: subprocess.Popen[str], signum: signal.Signals) -> None:
    # The group is gone once the process has exited and been reaped.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
