"""Child processes of the demo: the sandbox and the workers.

Each child runs in its own process group (a new session), so a Ctrl-C in the
terminal reaches only the demo, which then stops every group it started.
stdout and stderr of a child go to one log file in the demo's folder, and
the demo finds the child's ready line by reading that file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from linkvault.entrypoints.demo.errors import DemoError

logger = logging.getLogger(__name__)

# Seconds to wait for a ready line: a cold interpreter imports Flask, Authlib
# and SQLAlchemy while the other children start on the same cores.
READY_TIMEOUT = 60.0
# Seconds a worker gets after SIGTERM to finish the refreshes in flight and
# release its leases: above the token endpoint's 10-second HTTP timeout.
STOP_TIMEOUT = 30.0
# Seconds to wait after SIGTERM during an emergency stop, before SIGKILL.
KILL_AFTER = 5.0
_POLL = 0.05

# Runs the `linkvault` command line with this interpreter, wherever the
# package is installed and whether or not its console script is on PATH.
LINKVAULT_COMMAND = (
    sys.executable,
    "-c",
    "from linkvault.entrypoints.cli import main; main()",
)
SANDBOX_COMMAND = (sys.executable, "-m", "linkvault.sandbox")


class ChildProcess:
    """A started child: its process group, log file and exit code."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log: Path):
        self.name = name
        self.log = log
        self._process = process

    @classmethod
    def start(
        cls, name: str, argv: Sequence[str], *, env: Mapping[str, str], log: Path
    ) -> ChildProcess:
        """Start `argv` in a new session with its output appended to `log`."""
        with log.open("ab") as output:
            # The argv is built from constants and the demo's own paths.
            process = subprocess.Popen(  # noqa: S603
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )
        logger.info("Started %s as process %d, output in %s", name, process.pid, log)
        return cls(name, process, log)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code, or None while the process runs."""
        return self._process.poll()

    async def wait_for_line(self, prefix: str, *, within: float = READY_TIMEOUT) -> str:
        """Return the first line of the log that starts with `prefix`.

        Raises:
            DemoError: The process exited first, or `within` seconds passed.
        """
        try:
            async with asyncio.timeout(within):
                return await self._poll_for_line(prefix)
        except TimeoutError:
            raise DemoError(
                f"The {self.name} process did not print {prefix!r} within "
                f"{within:g} seconds; its output is in {self.log}."
            ) from None

    async def _poll_for_line(self, prefix: str) -> str:
        while (line := self._find_line(prefix)) is None:
            if self.returncode is not None:
                raise DemoError(
                    f"The {self.name} process exited with code {self.returncode} "
                    f"before printing {prefix!r}; its output is in {self.log}."
                )
            await asyncio.sleep(_POLL)
        return line

    def _find_line(self, prefix: str) -> str | None:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            if line.startswith(prefix):
                return line
        return None

    async def stop(self, *, grace: float = STOP_TIMEOUT) -> int:
        """Send SIGTERM, then SIGKILL after `grace` seconds. Return the exit code."""
        self._signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(self._process.wait, grace)
        except subprocess.TimeoutExpired:
            logger.warning(
                "The %s process ignored SIGTERM for %g s; killing it", self.name, grace
            )
            self._signal(signal.SIGKILL)
            code = await asyncio.to_thread(self._process.wait)
        logger.info("The %s process exited with code %d", self.name, code)
        return code

    def kill(self) -> None:
        """Stop the process group without awaiting: SIGTERM, then SIGKILL.

        Blocks for at most `KILL_AFTER` seconds. Meant for error and Ctrl-C
        paths, where the event loop may be shutting down.
        """
        if self.returncode is None:
            self._signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=KILL_AFTER)
        # Signalled even after the leader exited, in case it left children.
        self._signal(signal.SIGKILL)
        self._process.wait()

    def _signal(self, signum: signal.Signals) -> None:
        # The group is gone once every member exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """Return this process's environment without `LINKVAULT_*`, plus `extra`.

    The caller's `LINKVAULT_*` variables could point a worker at another
    database or key, so only the demo's config file decides.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LINKVAULT_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env
