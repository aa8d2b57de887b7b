"""The sandbox authorization server as a child process, and its admin API."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from linkvault.entrypoints.demo.errors import DemoError
from linkvault.entrypoints.demo.processes import (
    SANDBOX_COMMAND,
    ChildProcess,
    child_environment,
)
from linkvault.entrypoints.demo.workspace import Workspace
from linkvault.sandbox import READY_PREFIX
from linkvault.sandbox.admin import ADMIN_TOKEN_HEADER
from linkvault.sandbox.cli import ADMIN_TOKEN_ENV

# Seconds an access token lives: short, so a one-minute run rotates every
# refresh token several times. The sandbox rotates refresh tokens on
# every use and revokes the grant when a used one comes back.
ACCESS_TOKEN_LIFETIME = 20
_ADMIN_TIMEOUT = 10.0


def start_sandbox_process(workspace: Workspace, log_level: str) -> SandboxProcess:
    """Start the sandbox on a free loopback port. Call `wait_ready` next."""
    # The admin token keeps other local users from resetting the sandbox or
    # queueing faults. It travels in the environment, not the process list.
    admin_token = secrets.token_urlsafe(24)
    argv = [
        *SANDBOX_COMMAND,
        "--port=0",
        f"--access-token-lifetime={ACCESS_TOKEN_LIFETIME}",
        f"--log-level={log_level}",
    ]
    process = ChildProcess.start(
        "sandbox",
        argv,
        env=child_environment({ADMIN_TOKEN_ENV: admin_token}),
        log=workspace.log_file("sandbox"),
    )
    return SandboxProcess(process, admin_token)


@dataclass(slots=True)
class SandboxProcess:
    """A started sandbox, whose `url` and `admin` exist once it is ready."""

    process: ChildProcess
    _admin_token: str
    url: str = ""
    _admin: SandboxAdmin | None = None

    def __repr__(self) -> str:
        return f"SandboxProcess(pid={self.process.pid}, url={self.url!r})"

    async def wait_ready(self) -> str:
        """Wait for the ready line and return the sandbox's base URL."""
        line = await self.process.wait_for_line(READY_PREFIX)
        self.url = line.removeprefix(READY_PREFIX).strip()
        self._admin = SandboxAdmin(self.url, self._admin_token)
        return self.url

    @property
    def admin(self) -> SandboxAdmin:
        assert self._admin is not None, "call wait_ready first"
        return self._admin


class SandboxAdmin:
    """Client of the sandbox's `/_sandbox/` admin API."""

    def __init__(self, url: str, admin_token: str) -> None:
        self._client = httpx.AsyncClient(
            base_url=f"{url}/_sandbox",
            headers={ADMIN_TOKEN_HEADER: admin_token},
            timeout=_ADMIN_TIMEOUT,
            trust_env=False,
        )

    async def stats(self) -> dict[str, int]:
        """Return the sandbox's counters, such as `refreshes` and `reuse_detections`."""
        counters: dict[str, int] = await self._call("GET", "stats")
        return counters

    async def grants(self) -> list[dict[str, Any]]:
        """Return every grant, each with the SHA-256 of its current refresh token."""
        grants: list[dict[str, Any]] = await self._call("GET", "grants")
        return grants

    async def add_fault(
        self, mode: str, count: int, *, retry_after: int | None = None
    ) -> None:
        """Make the next `count` refresh token requests fail with `mode`."""
        fault: dict[str, Any] = {
            "mode": mode,
            "count": count,
            "grant_type": "refresh_token",
        }
        if retry_after is not None:
            fault["retry_after"] = retry_after
        await self._call("POST", "faults", json=fault)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        try:
            response = await self._client.request(method, f"/{path}", json=json)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise DemoError(
                f"The sandbox admin request {method} /_sandbox/{path} failed "
                f"({error}); the sandbox's output is in sandbox.log."
            ) from error
        return response.json()
