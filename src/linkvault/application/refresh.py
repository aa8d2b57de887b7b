"""Refreshing OAuth 2.0 tokens: one claimed connection at a time, and on demand.

Rules that keep a single-use refresh token from being redeemed twice:

- Only the holder of a connection's lease redeems its refresh token. Leases
  expire, so a dead holder blocks other workers for at most one lease.
- The provider is called outside any database transaction, and the result is
  saved with the version check. A rotated refresh token that was not stored is
  lost for good, so a failed save is retried from memory, and a save that loses
  to another writer is applied again on the fresh copy.
- `invalid_grant` is first checked against a fresh read: if another path
  rotated the token meanwhile, the error concerns the old token, not the grant.
- Backoff lives in `next_refresh_at` and `refresh_failures`, never in a sleep
  that holds a lease.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from linkvault.application.client_secrets import resolve_client_credentials
from linkvault.application.credentials import open_token_set, seal_token_set
from linkvault.application.group_commit import Change, GroupCommit, Saved
from linkvault.application.scheduling import next_refresh_at
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.credentials import TokenSet
from linkvault.domain.errors import (
    ConnectionNotFoundError,
    DatabaseUnavailableError,
    LinkvaultError,
    ProviderNotFoundError,
    StaleConnectionError,
)
from linkvault.domain.events import ConnectionEvent, EventType
from linkvault.domain.provider import Provider, RefreshPolicy
from linkvault.domain.status import ConnectionStatus
from linkvault.domain.token_response import (
    TokenErrorKind,
    TokenFailure,
    TokenSuccess,
)
from linkvault.ids import new_id
from linkvault.ports.cipher import Cipher
from linkvault.ports.clock import Clock
from linkvault.ports.repositories import UnitOfWorkFactory
from linkvault.ports.token_endpoint import TokenEndpoint

logger = logging.getLogger(__name__)


class RefreshError(LinkvaultError):
    """A valid access token could not be produced for a connection."""


class RefreshOutcome(StrEnum):
    """Result of one refresh attempt."""

    REFRESHED = "refreshed"
    # Another worker or process rotated the token first; nothing to do.
    ROTATED_ELSEWHERE = "rotated_elsewhere"
    EXPIRED = "expired"
    REVOKED = "revoked"
    # The provider's client setup is wrong; the provider is now paused.
    PROVIDER_PAUSED = "provider_paused"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    # Nothing to do: no longer active, or its provider is paused.
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    """Timing of refreshes; the lease must outlast the token endpoint timeout."""

    lease_for: timedelta = timedelta(seconds=60)
    first_backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(hours=1)
    # How recent another connection's success must be for `invalid_client` to
    # count as this connection's problem instead of the client's.
    peer_success_window: timedelta = timedelta(hours=1)
    # An access token closer than this to its expiry is refreshed on demand.
    access_token_skew: timedelta = timedelta(seconds=30)
    # How long `get_access_token` waits for another process's lease holder.
    wait_for_holder: timedelta = timedelta(seconds=20)
    poll_interval: timedelta = timedelta(milliseconds=100)
    save_attempts: int = 5
    # How long the first finished refresh waits for others to share its
    # transaction; see `GroupCommit`. Without a wait, the results that finish
    # while a commit runs still share the next one.
    save_window: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    connection_id: UUID
    outcome: RefreshOutcome
    # Error code of a failed attempt, for logs and counters; never a secret.
    error: str | None = None
    retry_at: datetime | None = None


def token_fingerprint(access_token: str) -> str:
    """Return the SHA-256 hex digest by which callers report a rejected token."""
    return hashlib.sha256(access_token.encode()).hexdigest()


class RefreshService:
    """Refreshes connections that this owner has leased, and serves access tokens.

    Args:
        owner: This process's lease owner id, unique across all workers.
    """

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        cipher: Cipher,
        clock: Clock,
        token_endpoint: TokenEndpoint,
        environ: Mapping[str, str],
        *,
        owner: str,
        settings: RefreshSettings | None = None,
        jitter: random.Random | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._cipher = cipher
        self._clock = clock
        self._endpoint = token_endpoint
        self._environ = environ
        self.owner = owner
        self.settings = settings or RefreshSettings()
        self._group = GroupCommit(
            unit_of_work, owner, window=self.settings.save_window.total_seconds()
        )
        self._jitter = jitter or random.Random()  # noqa: S311 -- spreads load only
        self._in_flight: dict[UUID, asyncio.Task[str]] = {}
        self._budgets: dict[UUID, timedelta] = {}

    # -- worker path -------------------------------------------------------

    async def claim_due(self, limit: int) -> list[ProviderConnection]:
        """Lease up to `limit` due connections for this owner."""
        async with self._unit_of_work() as work:
            return await work.leases.claim_due(
                owner=self.owner,
                now=self._clock.now(),
                lease_for=self.settings.lease_for,
                limit=limit,
            )

    async def release_all(self) -> int:
        async with self._unit_of_work() as work:
            return await work.leases.release_all(self.owner)

    async def renew_lease(self, connection_id: UUID) -> ProviderConnection | None:
        """Extend this owner's lease before a refresh that starts late.

        Returns the current row, or None when the refresh must not run:
        another owner holds the lease, or took it after this owner's lease
        expired and has already refreshed the connection (it is no longer due).
        """
        now = self._clock.now()
        async with self._unit_of_work() as work:
            current = await work.leases.claim(
                connection_id,
                owner=self.owner,
                now=now,
                lease_for=self.settings.lease_for,
            )
            if current is None:
                return None
            if current.next_refresh_at is None or current.next_refresh_at > now:
                await work.leases.release(connection_id, self.owner)
                return None
        return current

    async def refresh_claimed(
        self, connection: ProviderConnection, provider: Provider | None = None
    ) -> RefreshResult:
        """Refresh a connection this owner has leased, then release the lease."""
        try:
            return await self._refresh(connection, provider)
        except LinkvaultError as error:
            # A configuration problem (missing client secret, undecryptable
            # blob) must not stop a worker; it is logged and retried later.
            logger.error(
                "Refresh of connection %s failed before reaching the provider: %s",
                connection.id,
                error,
            )
            return await self._schedule_retry(
                connection, type(error).__name__, str(error), None
            )

    async def _refresh(
        self, connection: ProviderConnection, provider: Provider | None
    ) -> RefreshResult:
        if provider is None:
            provider = await self._provider(connection.provider_id)
        self._budgets[provider.id] = provider.refresh_policy.failure_budget
        if connection.status is not ConnectionStatus.ACTIVE or provider.is_paused:
            await self._release(connection.id)
            return RefreshResult(connection.id, RefreshOutcome.SKIPPED)

        tokens = open_token_set(self._cipher, connection)
        now = self._clock.now()
        dead = _dead_refresh_token(tokens, now)
        if dead is not None:
            return await self._mark(connection, EventType.EXPIRED, dead, now)

        client = resolve_client_credentials(provider, self._cipher, self._environ)
        outcome = await self._endpoint.refresh(
            provider,
            client,
            tokens=tokens,
            now=now,
            authorized_at=connection.authorized_at,
        )
        if isinstance(outcome, TokenSuccess):
            return await self._store(connection, provider, outcome, now)
        return await self._handle_failure(connection, provider, tokens, outcome)

    async def _store(
        self,
        connection: ProviderConnection,
        provider: Provider,
        outcome: TokenSuccess,
        now: datetime,
    ) -> RefreshResult:
        tokens = outcome.token_set
        due = next_refresh_at(tokens, now, provider.refresh_policy, jitter=self._jitter)
        details = {"refresh_token": outcome.refresh_token_change.value}

        def change(current: ProviderConnection) -> ConnectionEvent | None:
            if current.status is not ConnectionStatus.ACTIVE:
                logger.warning(
                    "Connection %s became %s during its refresh; the new tokens "
                    "are dropped",
                    current.id,
                    current.status.value,
                )
                return None
            current.replace_credentials(
                seal_token_set(self._cipher, current, tokens),
                now,
                next_refresh_at=due,
                refresh_token_expires_at=tokens.refresh_token_expires_at,
            )
            return _event(current, EventType.REFRESHED, now, None, details)

        stored = await self._save_with_retries(connection, change)
        outcome_kind = RefreshOutcome.REFRESHED if stored else RefreshOutcome.SKIPPED
        return RefreshResult(connection.id, outcome_kind)

    async def _handle_failure(
        self,
        connection: ProviderConnection,
        provider: Provider,
        tokens: TokenSet,
        failure: TokenFailure,
    ) -> RefreshResult:
        now = self._clock.now()
        kind = failure.kind
        if kind is TokenErrorKind.CLIENT_MISCONFIGURED:
            if await self._peers_refresh(connection, now):
                kind = TokenErrorKind.REAUTH_REQUIRED
            else:
                return await self._pause_provider(connection, provider, failure)

        if kind is TokenErrorKind.REAUTH_REQUIRED:
            if await self._rotated_elsewhere(connection.id, tokens):
                await self._release(connection.id)
                return RefreshResult(connection.id, RefreshOutcome.ROTATED_ELSEWHERE)
            return await self._mark(connection, EventType.EXPIRED, failure.reason, now)
        if kind is TokenErrorKind.REVOKED:
            return await self._mark(connection, EventType.REVOKED, failure.reason, now)
        return await self._schedule_retry(
            connection, failure.error or kind.value, failure.reason, failure.retry_after
        )

    async def _schedule_retry(
        self,
        connection: ProviderConnection,
        code: str,
        reason: str,
        retry_after: timedelta | None,
    ) -> RefreshResult:
        now = self._clock.now()
        deadline = self._failure_deadline(connection)
        if deadline is not None and now >= deadline:
            message = f"refresh kept failing until {deadline.isoformat()}: {reason}"
            return await self._mark(connection, EventType.FAILED, message, now)

        retry_at = now + self._backoff(connection.refresh_failures, retry_after)
        if deadline is not None:
            retry_at = min(retry_at, deadline)

        def change(current: ProviderConnection) -> ConnectionEvent | None:
            if current.status is not ConnectionStatus.ACTIVE:
                return None
            current.record_refresh_failure(now, reason[:2000], retry_at)
            details = {
                "error": code,
                "attempt": current.refresh_failures,
                "retry_at": retry_at.isoformat(),
            }
            return _event(current, EventType.REFRESH_FAILED, now, reason, details)

        await self._save_with_retries(connection, change)
        logger.warning(
            "Refresh of connection %s failed (%s); retry at %s",
            connection.id,
            code,
            retry_at.isoformat(),
        )
        return RefreshResult(
            connection.id, RefreshOutcome.RETRY_SCHEDULED, code, retry_at
        )

    def _failure_deadline(self, connection: ProviderConnection) -> datetime | None:
        # Failures start around the last token's expiry, so the budget counts
        # from there; the refresh token's own expiry ends it sooner.
        credentials = connection.credentials
        candidates = [connection.refresh_token_expires_at]
        if credentials is not None and credentials.expires_at is not None:
            budget = self._budgets.get(
                connection.provider_id, RefreshPolicy().failure_budget
            )
            candidates.append(credentials.expires_at + budget)
        known = [value for value in candidates if value is not None]
        return min(known) if known else None

    def _backoff(self, failures: int, retry_after: timedelta | None) -> timedelta:
        exponential: timedelta = self.settings.first_backoff * 2 ** min(failures, 20)
        capped = min(exponential, self.settings.max_backoff)
        # "Equal jitter": between half and all of the capped delay.
        delay: timedelta = capped * (0.5 + 0.5 * self._jitter.random())
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    async def _pause_provider(
        self, connection: ProviderConnection, provider: Provider, failure: TokenFailure
    ) -> RefreshResult:
        now = self._clock.now()
        async with self._unit_of_work() as work:
            current = await work.providers.get(provider.id)
            if current is not None and not current.is_paused:
                current.paused_at = now
                current.paused_reason = failure.reason[:2000]
                await work.providers.save(current)
            await work.leases.release(connection.id, self.owner)
            details = {"error": failure.error, "provider_paused": True}
            event = _event(
                connection, EventType.REFRESH_FAILED, now, failure.reason, details
            )
            await work.events.append(event)
        logger.error(
            "Provider %s returned %s for connection %s: its client settings are "
            "wrong, so it is PAUSED and none of its connections will refresh. Fix "
            "the client id or secret, then run `linkvault providers resume %s`.",
            provider.slug,
            failure.error,
            connection.id,
            provider.slug,
        )
        return RefreshResult(
            connection.id, RefreshOutcome.PROVIDER_PAUSED, failure.error
        )

    async def _peers_refresh(
        self, connection: ProviderConnection, now: datetime
    ) -> bool:
        since = now - self.settings.peer_success_window
        async with self._unit_of_work(readonly=True) as work:
            count = await work.leases.count_recent_refreshes(
                connection.provider_id, since=since, excluding=connection.id
            )
        return count > 0

    async def _rotated_elsewhere(self, connection_id: UUID, used: TokenSet) -> bool:
        async with self._unit_of_work(readonly=True) as work:
            current = await work.connections.find_by_id(connection_id)
        if current is None or current.status is not ConnectionStatus.ACTIVE:
            return False
        stored = open_token_set(self._cipher, current)
        return stored.refresh_token != used.refresh_token

    async def _mark(
        self,
        connection: ProviderConnection,
        event: EventType,
        reason: str,
        now: datetime,
    ) -> RefreshResult:
        def change(current: ProviderConnection) -> ConnectionEvent | None:
            if current.status is not ConnectionStatus.ACTIVE:
                return None
            if event is EventType.EXPIRED:
                current.mark_expired(now, reason[:2000])
            elif event is EventType.REVOKED:
                current.mark_revoked(now, reason[:2000])
            else:
                current.mark_failed(now, reason[:2000])
            return _event(current, event, now, reason, None)

        await self._save_with_retries(connection, change)
        logger.warning(
            "Connection %s is now %s: %s", connection.id, event.value, reason
        )
        outcome = {
            EventType.EXPIRED: RefreshOutcome.EXPIRED,
            EventType.REVOKED: RefreshOutcome.REVOKED,
        }.get(event, RefreshOutcome.FAILED)
        return RefreshResult(connection.id, outcome, reason[:200])

    async def _save_with_retries(
        self, connection: ProviderConnection, change: Change
    ) -> bool:
        """Apply a change and save it, releasing the lease; True if stored.

        The first attempt joins the group commit of this owner's concurrent
        refreshes. A stale version means another writer touched the row (an
        alias edit, a disconnect), so the change is applied again to the
        newest copy. A database outage is retried with short pauses, because
        the tokens in memory may be the only copy of a rotated refresh token.
        """
        saved = await self._group.save(connection, change)
        if saved is not Saved.RETRY:
            return saved is Saved.STORED

        for attempt in range(1, self.settings.save_attempts + 1):
            try:
                return await self._save_alone(connection.id, change)
            except StaleConnectionError:
                logger.info(
                    "Connection %s changed meanwhile; applying again", connection.id
                )
            except DatabaseUnavailableError as error:
                logger.error(
                    "Saving the refresh of connection %s failed (attempt %d): %s",
                    connection.id,
                    attempt,
                    error,
                )
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        logger.critical(
            "Gave up saving the refresh of connection %s after %d attempts; if the "
            "provider rotated its refresh token, the connection must be reconnected",
            connection.id,
            self.settings.save_attempts,
        )
        return False

    async def _save_alone(self, connection_id: UUID, change: Change) -> bool:
        async with self._unit_of_work() as work:
            current = await work.connections.find_by_id(connection_id)
            event = None if current is None else change(current)
            if current is not None and event is not None:
                await work.connections.save(current)
                await work.events.append(event)
            await work.leases.release(connection_id, self.owner)
        return event is not None

    async def _release(self, connection_id: UUID) -> None:
        async with self._unit_of_work() as work:
            await work.leases.release(connection_id, self.owner)

    async def _provider(self, provider_id: UUID) -> Provider:
        async with self._unit_of_work(readonly=True) as work:
            provider = await work.providers.get(provider_id)
        if provider is None:
            raise ProviderNotFoundError(provider_id)
        return provider

    # -- on-demand path ----------------------------------------------------

    async def get_access_token(
        self, connection_id: UUID, *, rejected_token: str | None = None
    ) -> str:
        """Return a valid access token, refreshing first when needed.

        Concurrent callers in this process share one refresh, which runs as
        its own task so that a cancelled caller does not cancel it. Callers
        in other processes wait (bounded) for the lease holder's result.

        Args:
            rejected_token: `token_fingerprint` of an access token the provider
                rejected. It forces a refresh only if it is still the stored
                token; a report about a token already replaced forces nothing.

        Raises:
            RefreshError: The connection is not active, or no valid token could
                be obtained in time.
        """
        task = self._in_flight.get(connection_id)
        if task is None:
            task = asyncio.create_task(
                self._access_token(connection_id, rejected_token),
                name=f"linkvault-token-{connection_id}",
            )
            self._in_flight[connection_id] = task
            task.add_done_callback(lambda _: self._in_flight.pop(connection_id, None))
        return await asyncio.shield(task)

    async def _access_token(self, connection_id: UUID, rejected: str | None) -> str:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.settings.wait_for_holder.total_seconds()
        while True:
            connection = await self._read_active(connection_id)
            tokens = open_token_set(self._cipher, connection)
            if self._usable(tokens, rejected):
                return tokens.access_token

            claimed = await self._claim_one(connection_id)
            if claimed is not None:
                return await self._serve_claimed(claimed, rejected)

            if loop.time() >= give_up:
                if self._still_valid(tokens):
                    return tokens.access_token
                raise RefreshError(
                    f"Connection {connection_id} is being refreshed by another "
                    f"process that did not finish within "
                    f"{self.settings.wait_for_holder.total_seconds():g} s; retry."
                )
            await asyncio.sleep(self.settings.poll_interval.total_seconds())

    async def _serve_claimed(
        self, claimed: ProviderConnection, rejected: str | None
    ) -> str:
        # The previous lease holder may have refreshed and released between
        # our read and our claim (the claim waited for its row lock). The
        # claimed row is current, so it is checked again before redeeming a
        # refresh token that was just rotated.
        if claimed.status is ConnectionStatus.ACTIVE:
            tokens = open_token_set(self._cipher, claimed)
            if self._usable(tokens, rejected):
                await self._release(claimed.id)
                return tokens.access_token

        result = await self.refresh_claimed(claimed)
        if result.outcome is not RefreshOutcome.REFRESHED:
            raise RefreshError(
                f"Connection {claimed.id} could not be refreshed "
                f"({result.outcome.value}: {result.error}); see its events."
            )
        fresh = await self._read_active(claimed.id)
        return open_token_set(self._cipher, fresh).access_token

    def _usable(self, tokens: TokenSet, rejected: str | None) -> bool:
        if rejected is not None and rejected == token_fingerprint(tokens.access_token):
            return False
        if tokens.expires_at is None:
            return True
        return tokens.expires_at - self.settings.access_token_skew > self._clock.now()

    def _still_valid(self, tokens: TokenSet) -> bool:
        return tokens.expires_at is None or tokens.expires_at > self._clock.now()

    async def _read_active(self, connection_id: UUID) -> ProviderConnection:
        async with self._unit_of_work(readonly=True) as work:
            connection = await work.connections.find_by_id(connection_id)
        if connection is None:
            raise ConnectionNotFoundError(connection_id)
        if connection.status is not ConnectionStatus.ACTIVE:
            raise RefreshError(
                f"Connection {connection_id} is {connection.status.value}"
                f" ({connection.status_reason or 'no reason recorded'}); the user "
                "must reconnect it."
            )
        return connection

    async def _claim_one(self, connection_id: UUID) -> ProviderConnection | None:
        async with self._unit_of_work() as work:
            return await work.leases.claim(
                connection_id,
                owner=self.owner,
                now=self._clock.now(),
                lease_for=self.settings.lease_for,
            )


def _dead_refresh_token(tokens: TokenSet, now: datetime) -> str | None:
    if tokens.refresh_token is None:
        return "the token set has no refresh token; the user must reconnect"
    expiry = tokens.refresh_token_expires_at
    if expiry is not None and expiry <= now:
        return f"the refresh token expired at {expiry.isoformat()}"
    return None


def _event(
    connection: ProviderConnection,
    event: EventType,
    now: datetime,
    reason: str | None,
    details: dict[str, Any] | None,
) -> ConnectionEvent:
    return ConnectionEvent.record(
        id=new_id(),
        connection=connection,
        event_type=event,
        occurred_at=now,
        status_before=ConnectionStatus.ACTIVE.value,
        reason=None if reason is None else reason[:2000],
        actor="refresh",
        details=details,
    )
