"""Measurements and checks of the demo: worker reports, token currency, verdict."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from linkvault.application.credentials import open_token_set
from linkvault.application.refresh import RefreshOutcome
from linkvault.bootstrap import Services
from linkvault.domain.status import ConnectionStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """One worker's `--stats-file`: outcome counts and latency percentiles."""

    name: str
    outcomes: dict[str, int] = field(default_factory=dict)
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    exit_code: int | None = None

    @property
    def refreshed(self) -> int:
        return self.outcomes.get(RefreshOutcome.REFRESHED.value, 0)

    @property
    def retried(self) -> int:
        """Failed attempts (5xx, 429, timeouts) that were scheduled again."""
        return self.outcomes.get(RefreshOutcome.RETRY_SCHEDULED.value, 0)

    @classmethod
    def read(
        cls, name: str, path: Path, *, exit_code: int | None = None
    ) -> WorkerReport:
        """Read a stats file. An absent or unreadable one gives empty counts."""
        try:
            document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls(name, exit_code=exit_code)
        outcomes = document.get("outcomes", {})
        latency = document.get("latency_seconds", {})
        return cls(
            name,
            outcomes={str(key): int(value) for key, value in outcomes.items()},
            p50_seconds=latency.get("p50"),
            p95_seconds=latency.get("p95"),
            exit_code=exit_code,
        )


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """Active connections whose stored refresh token is the sandbox's current one."""

    active: int
    current: int
    stale: tuple[UUID, ...]

    @property
    def passed(self) -> bool:
        return not self.stale


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """Everything the final table shows, and whether the run passed."""

    users: int
    workers: tuple[WorkerReport, ...]
    statuses: dict[ConnectionStatus, int]
    sandbox_stats: dict[str, int]
    tokens: TokenCheck

    @property
    def reuse_detections(self) -> int:
        return self.sandbox_stats.get("reuse_detections", 0)

    @property
    def refreshed(self) -> int:
        return sum(worker.refreshed for worker in self.workers)

    @property
    def retried(self) -> int:
        return sum(worker.retried for worker in self.workers)

    @property
    def still_active(self) -> int:
        return self.statuses.get(ConnectionStatus.ACTIVE, 0)

    @property
    def clean_exits(self) -> int:
        return sum(1 for worker in self.workers if worker.exit_code == 0)

    @property
    def passed(self) -> bool:
        """Whether no refresh token was reused, every stored one is current,
        every connection is still active and every worker exited with code 0."""
        return (
            self.reuse_detections == 0
            and self.tokens.passed
            and self.still_active == self.users
            and self.clean_exits == len(self.workers)
        )


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def current_hashes(grants: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """Map each user to the refresh token hashes of their active grants."""
    by_user: dict[str, set[str]] = defaultdict(set)
    for grant in grants:
        digest = grant.get("refresh_token_sha256")
        if grant.get("active") and digest:
            by_user[str(grant["user"])].add(digest)
    return by_user


async def check_tokens(
    services: Services, grants: Iterable[dict[str, Any]]
) -> TokenCheck:
    """Compare every active connection's refresh token with the sandbox's.

    Each stored token set is decrypted, its refresh token hashed with
    SHA-256 and looked up among the hashes of the user's active grants (the
    sandbox keeps hashes only). A stale token means a rotation was lost.
    """
    expected = current_hashes(grants)
    async with services.unit_of_work(readonly=True) as work:
        active = await work.connections.list_connections(status=ConnectionStatus.ACTIVE)

    stale: list[UUID] = []
    for connection in active:
        tokens = open_token_set(services.keyring, connection)
        refresh_token = tokens.refresh_token
        digest = sha256_hex(refresh_token) if refresh_token else None
        if digest not in expected.get(str(connection.user_id), set()):
            logger.error(
                "Connection %s stores a refresh token that is not its grant's "
                "current one",
                connection.id,
            )
            stale.append(connection.id)
    return TokenCheck(len(active), len(active) - len(stale), tuple(stale))
