"""Refreshing against the sandbox: rotation, faults and every outcome."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from harness import Harness, running_harness
from sandbox_process import SandboxHandle, running_sandbox

from linkvault.application.credentials import open_token_set
from linkvault.application.refresh import (
    RefreshError,
    RefreshOutcome,
    token_fingerprint,
)
from linkvault.domain import (
    ConnectionStatus,
    EventType,
    ProviderConnection,
    RefreshPolicy,
    StaleConnectionError,
    TokenResponseSettings,
)

pytestmark = pytest.mark.e2e

HOUR = timedelta(hours=1)


@pytest.fixture
async def harness(sandbox: SandboxHandle, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(sandbox, tmp_path) as harness:
        yield harness


async def due_now(harness: Harness, connection: ProviderConnection) -> None:
    """Move the fake clock to the connection's next refresh time."""
    assert connection.next_refresh_at is not None
    harness.clock.set(connection.next_refresh_at + timedelta(seconds=1))


async def claim_one(harness: Harness, owner: str = "test-worker") -> ProviderConnection:
    (claimed,) = await harness.refresh_service(owner).claim_due(10)
    return claimed


async def events_of(harness: Harness, connection_id: uuid.UUID) -> list[EventType]:
    async with harness.services.unit_of_work(readonly=True) as work:
        events = await work.events.list_for_connection(connection_id)
    return [event.event_type for event in events]


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def test_refresh_rotates_and_stores(harness: Harness) -> None:
    connection = await harness.connect()
    before = open_token_set(harness.services.keyring, connection)
    await due_now(harness, connection)

    result = await harness.refresh_service().refresh_claimed(await claim_one(harness))

    stored = await harness.load(connection.id)
    after = open_token_set(harness.services.keyring, stored)
    (grant,) = harness.sandbox.grants(str(connection.user_id))
    assert result.outcome is RefreshOutcome.REFRESHED
    assert after.refresh_token != before.refresh_token
    assert after.refresh_token is not None
    assert grant["refresh_token_sha256"] == sha256(after.refresh_token)
    assert stored.next_refresh_at is not None
    assert stored.next_refresh_at > harness.clock.now()
    assert stored.refresh_failures == 0
    assert await events_of(harness, connection.id) == [
        EventType.CREATED,
        EventType.CONNECTED,
        EventType.REFRESHED,
    ]


async def test_lease_released_after_refresh(harness: Harness) -> None:
    connection = await harness.connect()
    await due_now(harness, connection)

    await harness.refresh_service().refresh_claimed(await claim_one(harness))

    async with harness.services.unit_of_work(readonly=True) as work:
        owner, expires = await work.leases.lease_of(connection.id)
    assert owner is None
    assert expires is None


async def test_server_error_backs_off(harness: Harness) -> None:
    connection = await harness.connect()
    await due_now(harness, connection)
    harness.sandbox.add_fault(mode="status_500", count=1)

    result = await harness.refresh_service().refresh_claimed(await claim_one(harness))

    stored = await harness.load(connection.id)
    assert result.outcome is RefreshOutcome.RETRY_SCHEDULED
    assert result.retry_at is not None
    assert result.retry_at >= harness.clock.now() + timedelta(seconds=15)
    assert stored.refresh_failures == 1
    assert stored.next_refresh_at == result.retry_at
    assert stored.status is ConnectionStatus.ACTIVE
    assert (await events_of(harness, connection.id))[-1] is EventType.REFRESH_FAILED

    harness.clock.set(result.retry_at + timedelta(seconds=1))
    retried = await harness.refresh_service().refresh_claimed(await claim_one(harness))
    assert retried.outcome is RefreshOutcome.REFRESHED
    assert (await harness.load(connection.id)).refresh_failures == 0


async def test_backoff_grows_with_failures(harness: Harness) -> None:
    connection = await harness.connect()
    await due_now(harness, connection)
    delays = []
    for _ in range(3):
        harness.sandbox.add_fault(mode="status_500", count=1)
        result = await harness.refresh_service().refresh_claimed(
            await claim_one(harness)
        )
        assert result.retry_at is not None
        delays.append(result.retry_at - harness.clock.now())
        harness.clock.set(result.retry_at + timedelta(seconds=1))

    assert delays[1] > delays[0]
    assert delays[2] > delays[1]


async def test_rate_limit_honours_retry_after(harness: Harness) -> None:
    connection = await harness.connect()
    await due_now(harness, connection)
    harness.sandbox.add_fault(mode="status_429", count=1, retry_after=900)

    result = await harness.refresh_service().refresh_claimed(await claim_one(harness))

    assert result.outcome is RefreshOutcome.RETRY_SCHEDULED
    assert result.retry_at is not None
    assert result.retry_at >= harness.clock.now() + timedelta(seconds=900)


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("malformed_body", 200),
        ("html_body", 200),
        ("no_access_token", 200),
        ("status_500", None),
    ],
)
async def test_unusable_responses_are_transient(
    harness: Harness, fault: str, status: int | None
) -> None:
    connection = await harness.connect()
    await due_now(harness, connection)
    spec: dict[str, object] = {"mode": fault, "count": 1}
    if status is not None:
        spec["status"] = status
    harness.sandbox.add_fault(**spec)

    result = await harness.refresh_service().refresh_claimed(await claim_one(harness))

    stored = await harness.load(connection.id)
    assert result.outcome is RefreshOutcome.RETRY_SCHEDULED
    assert stored.status is ConnectionStatus.ACTIVE
    assert stored.credentials == connection.credentials


async def test_timeout_is_transient(sandbox: SandboxHandle, tmp_path: Path) -> None:
    async with running_harness(sandbox, tmp_path, http_timeout=0.5) as harness:
        connection = await harness.connect()
        await due_now(harness, connection)
        harness.sandbox.add_fault(mode="delay", count=1, delay_seconds=2.0)

        result = await harness.refresh_service().refresh_claimed(
            await claim_one(harness)
        )

    assert result.outcome is RefreshOutcome.RETRY_SCHEDULED
    assert result.error == "timeout"


async def test_invalid_grant_expires_connection(harness: Harness) -> None:
    connection = await harness.connect()
    await due_now(harness, connection)
    harness.sandbox.add_fault(mode="invalid_grant", count=1)

    result = await harness.refresh_service().refresh_claimed(await claim_one(harness))

    stored = await harness.load(connection.id)
    assert result.outcome is RefreshOutcome.EXPIRED
    assert stored.status is ConnectionStatus.EXPIRED
    assert stored.status_reason is not None
    assert "invalid_grant" in stored.status_reason
    assert (await events_of(harness, connection.id))[-1] is EventType.EXPIRED


async def test_invalid_client_pauses_provider(harness: Harness) -> None:
    connection = await harness.connect()
    other = await harness.connect()
    await due_now(harness, connection)
    harness.clock.advance(HOUR)
    harness.sandbox.add_fault(mode="invalid_client", count=1)
    service = harness.refresh_service()
    first, second = await service.claim_due(10)

    result = await service.refresh_claimed(first)

    async with harness.services.unit_of_work(readonly=True) as work:
        provider = await work.providers.get(harness.provider.id)
    unchanged = await harness.load(first.id)
    assert result.outcome is RefreshOutcome.PROVIDER_PAUSED
    assert provider is not None
    assert provider.is_paused
    assert unchanged.status is ConnectionStatus.ACTIVE
    assert unchanged.version == first.version
    assert unchanged.credentials == first.credentials
    skipped = await service.refresh_claimed(second)
    assert skipped.outcome is RefreshOutcome.SKIPPED
    assert await service.claim_due(10) == []
    assert {connection.id, other.id} == {first.id, second.id}


async def test_invalid_client_with_healthy_peers(harness: Harness) -> None:
    healthy = await harness.connect()
    broken = await harness.connect()
    await due_now(harness, healthy)
    harness.clock.advance(HOUR)
    service = harness.refresh_service()
    batch = await service.claim_due(10)
    by_id = {c.id: c for c in batch}
    await service.refresh_claimed(by_id[healthy.id])
    harness.sandbox.add_fault(mode="invalid_client", count=1)

    result = await service.refresh_claimed(by_id[broken.id])

    async with harness.services.unit_of_work(readonly=True) as work:
        provider = await work.providers.get(harness.provider.id)
    assert result.outcome is RefreshOutcome.EXPIRED
    assert provider is not None
    assert not provider.is_paused
    assert (await harness.load(broken.id)).status is ConnectionStatus.EXPIRED


async def test_exhausted_budget_fails(sandbox: SandboxHandle, tmp_path: Path) -> None:
    policy = RefreshPolicy(failure_budget=timedelta(minutes=10))
    async with running_harness(sandbox, tmp_path, refresh_policy=policy) as harness:
        connection = await harness.connect()
        assert connection.credentials is not None
        assert connection.credentials.expires_at is not None
        harness.clock.set(connection.credentials.expires_at + timedelta(minutes=11))
        harness.sandbox.add_fault(mode="status_500", count=1, status=503)

        result = await harness.refresh_service().refresh_claimed(
            await claim_one(harness)
        )
        stored = await harness.load(connection.id)
        events = await events_of(harness, connection.id)

    assert result.outcome is RefreshOutcome.FAILED
    assert stored.status is ConnectionStatus.FAILED
    assert events[-1] is EventType.FAILED


async def test_rotation_elsewhere_is_not_failure(harness: Harness) -> None:
    connection = await harness.connect()
    await due_now(harness, connection)
    stale = await claim_one(harness, "worker-a")
    await harness.refresh_service("worker-b").refresh_claimed(
        await _force_claim(harness, connection, "worker-b")
    )

    result = await harness.refresh_service("worker-a").refresh_claimed(stale)

    assert result.outcome is RefreshOutcome.ROTATED_ELSEWHERE
    assert (await harness.load(connection.id)).status is ConnectionStatus.ACTIVE


async def _force_claim(
    harness: Harness, connection: ProviderConnection, owner: str
) -> ProviderConnection:
    harness.clock.advance(timedelta(minutes=2))
    async with harness.services.unit_of_work() as work:
        claimed = await work.leases.claim(
            connection.id,
            owner=owner,
            now=harness.clock.now(),
            lease_for=timedelta(seconds=60),
        )
    assert claimed is not None
    return claimed


async def claim_then_edit(
    harness: Harness,
    connection: ProviderConnection,
    edit: Callable[[ProviderConnection], None],
) -> ProviderConnection:
    """Claim a due connection, then change its row as another writer would."""
    await due_now(harness, connection)
    claimed = await claim_one(harness)
    async with harness.services.unit_of_work() as work:
        edited = await work.connections.find_by_id(connection.id)
        assert edited is not None
        edit(edited)
        await work.connections.save(edited)
    return claimed


def rename(connection: ProviderConnection) -> None:
    connection.alias = "renamed during the refresh"


async def test_edit_during_refresh_is_kept(harness: Harness) -> None:
    connection = await harness.connect()
    claimed = await claim_then_edit(harness, connection, rename)

    result = await harness.refresh_service().refresh_claimed(claimed)

    stored = await harness.load(connection.id)
    tokens = open_token_set(harness.services.keyring, stored)
    (grant,) = harness.sandbox.grants(str(connection.user_id))
    assert result.outcome is RefreshOutcome.REFRESHED
    assert stored.alias == "renamed during the refresh"
    assert tokens.refresh_token is not None
    assert grant["refresh_token_sha256"] == sha256(tokens.refresh_token)
    assert (await events_of(harness, connection.id)).count(EventType.REFRESHED) == 1


async def test_disconnect_during_refresh_drops_tokens(harness: Harness) -> None:
    connection = await harness.connect()

    def disconnect(edited: ProviderConnection) -> None:
        edited.disconnect(harness.clock.now())

    claimed = await claim_then_edit(harness, connection, disconnect)

    result = await harness.refresh_service().refresh_claimed(claimed)

    stored = await harness.load(connection.id)
    assert result.outcome is RefreshOutcome.SKIPPED
    assert stored.status is ConnectionStatus.DISCONNECTED
    assert stored.credentials is None
    assert EventType.REFRESHED not in await events_of(harness, connection.id)


async def test_stale_copy_cannot_undo_rotation(harness: Harness) -> None:
    connection = await harness.connect()
    stale = await harness.load(connection.id)
    await due_now(harness, connection)
    await harness.refresh_service().refresh_claimed(await claim_one(harness))
    rotated = open_token_set(
        harness.services.keyring, await harness.load(connection.id)
    )

    stale.alias = "edited from an old copy"
    with pytest.raises(StaleConnectionError):
        async with harness.services.unit_of_work() as work:
            await work.connections.save(stale)

    survivor = open_token_set(
        harness.services.keyring, await harness.load(connection.id)
    )
    assert survivor.refresh_token == rotated.refresh_token


async def test_refresh_without_expires_in(tmp_path: Path) -> None:
    assumed = timedelta(minutes=10)
    settings = TokenResponseSettings(assumed_lifetime=assumed)
    with running_sandbox(omit_expires_in=True, access_token_lifetime=900) as sandbox:
        async with running_harness(
            sandbox, tmp_path, token_response=settings
        ) as harness:
            connection = await harness.connect()
            connected_at = harness.clock.now()
            assert connection.next_refresh_at is not None
            assert connection.next_refresh_at < connected_at + assumed
            await due_now(harness, connection)

            result = await harness.refresh_service().refresh_claimed(
                await claim_one(harness)
            )
            stored = await harness.load(connection.id)

    assert result.outcome is RefreshOutcome.REFRESHED
    assert stored.next_refresh_at is not None
    assert stored.next_refresh_at < harness.clock.now() + assumed


async def test_get_token_shares_one_refresh(harness: Harness) -> None:
    connection = await harness.connect()
    assert connection.credentials is not None
    assert connection.credentials.expires_at is not None
    harness.clock.set(connection.credentials.expires_at - timedelta(seconds=5))
    service = harness.refresh_service("api")

    tokens = await asyncio.gather(
        *(service.get_access_token(connection.id) for _ in range(20))
    )

    assert len(set(tokens)) == 1
    assert harness.sandbox.stats()["refreshes"] == 1
    assert harness.sandbox.stats()["reuse_detections"] == 0


async def test_get_token_fresh_needs_no_call(harness: Harness) -> None:
    connection = await harness.connect()
    stored = open_token_set(harness.services.keyring, connection)

    token = await harness.refresh_service("api").get_access_token(connection.id)

    assert token == stored.access_token
    assert harness.sandbox.stats()["refreshes"] == 0


async def test_rejected_token_forces_refresh_once(harness: Harness) -> None:
    connection = await harness.connect()
    old = open_token_set(harness.services.keyring, connection).access_token
    service = harness.refresh_service("api")

    new = await service.get_access_token(
        connection.id, rejected_token=token_fingerprint(old)
    )
    again = await service.get_access_token(
        connection.id, rejected_token=token_fingerprint(old)
    )

    assert new != old
    assert again == new
    assert harness.sandbox.stats()["refreshes"] == 1


async def test_get_token_on_expired_connection(harness: Harness) -> None:
    connection = await harness.connect()
    await due_now(harness, connection)
    harness.sandbox.add_fault(mode="invalid_grant", count=1)
    await harness.refresh_service().refresh_claimed(await claim_one(harness))

    with pytest.raises(RefreshError, match="reconnect"):
        await harness.refresh_service("api").get_access_token(connection.id)


async def test_cancelled_caller_keeps_refresh(harness: Harness) -> None:
    connection = await harness.connect()
    assert connection.credentials is not None
    assert connection.credentials.expires_at is not None
    harness.clock.set(connection.credentials.expires_at - timedelta(seconds=5))
    harness.sandbox.add_fault(mode="delay", count=1, delay_seconds=0.5)
    service = harness.refresh_service("api")

    first = asyncio.create_task(service.get_access_token(connection.id))
    await asyncio.sleep(0.1)
    first.cancel()
    token = await service.get_access_token(connection.id)

    assert harness.sandbox.stats()["refreshes"] == 1
    assert (
        token
        == open_token_set(
            harness.services.keyring, await harness.load(connection.id)
        ).access_token
    )
