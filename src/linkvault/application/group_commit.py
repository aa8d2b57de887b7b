"""Group commit: refresh results that finish together are saved in one transaction.

A worker refreshes many connections at once, and each result used to take a
transaction of its own: BEGIN, the version-checked UPDATE, the event INSERT,
the lease release and COMMIT. Here the results that are ready while a commit
is in progress, or arrive within a short window after the first, share one
transaction: on PostgreSQL one version-checked UPDATE of all their rows
that also drops their leases (SQLite: one per row, then one for the leases),
and one INSERT of all their events. The window is the one delay this adds
before a rotated refresh token reaches the database, so it is kept to
milliseconds (and is off by default).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from uuid import UUID

from linkvault.domain.connection import ProviderConnection
from linkvault.domain.events import ConnectionEvent
from linkvault.ports.repositories import UnitOfWorkFactory

logger = logging.getLogger(__name__)

# Applies a refresh result to a copy of the connection and returns the event
# to record, or None when there is nothing to store (the connection is no
# longer active). It must not do any I/O, because a group runs it for every
# member inside one transaction.
Change = Callable[[ProviderConnection], ConnectionEvent | None]

# Members per transaction; a larger backlog waits for the next commit.
MAX_GROUP = 100


class Saved(Enum):
    """The result of a group commit for one member."""

    STORED = "stored"
    # The change found nothing to store; the lease was released.
    UNCHANGED = "unchanged"
    # Not saved: the row changed meanwhile, or the group's transaction failed.
    # The caller saves it alone, from a fresh read.
    RETRY = "retry"


@dataclass(slots=True)
class _Member:
    connection: ProviderConnection
    change: Change
    done: asyncio.Future[Saved] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    """Saves refresh results of one lease owner, grouping concurrent ones.

    Each member's change is applied to the connection as it was claimed and
    saved with the version check. A stale member is left out of the group
    and gets `Saved.RETRY`. If the transaction itself fails, every member
    gets `Saved.RETRY`. Leases of stored and unchanged members are released
    in the same transaction; a stale member keeps its lease for the retry.
    """

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        owner: str,
        *,
        max_group: int = MAX_GROUP,
        window: float = 0.0,
    ) -> None:
        if max_group < 1:
            raise ValueError(f"max_group={max_group} must be at least 1.")
        if window < 0:
            raise ValueError(f"window={window} must not be negative.")
        self._window = window
        self._unit_of_work = unit_of_work
        self._owner = owner
        self._max_group = max_group
        self._waiting: list[_Member] = []
        self._committer: asyncio.Task[None] | None = None

    async def save(self, connection: ProviderConnection, change: Change) -> Saved:
        """Apply `change` to `connection` and save it with the next group."""
        member = _Member(connection, change)
        self._waiting.append(member)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(
                self._commit_waiting(), name=f"linkvault-group-commit-{self._owner}"
            )
        # Shielded: a cancelled caller must not cancel the commit of the others.
        return await asyncio.shield(member.done)

    async def _commit_waiting(self) -> None:
        group: list[_Member] = []
        try:
            while self._waiting:
                if self._window and len(self._waiting) < self._max_group:
                    await asyncio.sleep(self._window)
                group = self._waiting[: self._max_group]
                del self._waiting[: self._max_group]
                await self._commit_group(group)
        except BaseException:
            # Cancelled while shutting down: no member may wait forever.
            for member in [*group, *self._waiting]:
                member.done.cancel()
            self._waiting.clear()
            raise

    async def _commit_group(self, group: list[_Member]) -> None:
        try:
            results = await self._commit(group)
        except Exception as error:
            logger.warning(
                "Saving a group of %d refreshes failed (%s: %s); saving each one alone",
                len(group),
                type(error).__name__,
                error,
            )
            results = [Saved.RETRY] * len(group)
        for member, result in zip(group, results, strict=True):
            if not member.done.done():
                member.done.set_result(result)

    async def _commit(self, group: list[_Member]) -> list[Saved]:
        events = [member.change(member.connection) for member in group]
        changed = [m.connection for m, e in zip(group, events, strict=True) if e]
        results: list[Saved] = []
        stored_events: list[ConnectionEvent] = []
        unchanged: list[UUID] = []
        async with self._unit_of_work() as work:
            stored = iter(await work.leases.store_and_release(changed, self._owner))
            for member, event in zip(group, events, strict=True):
                if event is None:
                    results.append(Saved.UNCHANGED)
                    unchanged.append(member.connection.id)
                elif next(stored):
                    results.append(Saved.STORED)
                    stored_events.append(event)
                else:
                    # Its UPDATE matched no row, so nothing of it was written.
                    results.append(Saved.RETRY)

            if stored_events:
                await work.events.append_many(stored_events)
            if unchanged:
                await work.leases.release_many(unchanged, self._owner)
        return results
