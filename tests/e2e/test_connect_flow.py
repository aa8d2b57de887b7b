"""Connecting through the real authorization code flow against the sandbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from harness import Harness, approve, running_harness
from sandbox_process import SandboxHandle

from linkvault.application.connect import (
    AuthorizationCallback,
    AuthorizationRequest,
)
from linkvault.application.credentials import open_token_set
from linkvault.domain import (
    AuthorizationDeniedError,
    ConnectionStatus,
    EventType,
    InvalidStateError,
)
from linkvault.domain.authorization import hash_state
from linkvault.entrypoints.callback_server import CallbackServer

pytestmark = pytest.mark.e2e


@pytest.fixture
async def harness(sandbox: SandboxHandle, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(sandbox, tmp_path) as harness:
        yield harness


async def _approve(request: AuthorizationRequest) -> None:
    await approve(request)


async def _connect(harness: Harness, user_id: uuid.UUID) -> uuid.UUID:
    return (await harness.connect(user_id)).id


async def test_three_users_connect_with_pkce(harness: Harness) -> None:
    users = [uuid.uuid4() for _ in range(3)]

    ids = [await _connect(harness, user) for user in users]

    async with harness.services.unit_of_work(readonly=True) as work:
        connections = [await work.connections.find_by_id(i) for i in ids]
    for user, connection in zip(users, connections, strict=True):
        assert connection is not None
        assert connection.user_id == user
        assert connection.status is ConnectionStatus.ACTIVE
        assert connection.next_refresh_at is not None
        assert connection.credentials is not None
        tokens = open_token_set(harness.services.keyring, connection)
        stored = connection.credentials.encrypted_data
        assert tokens.access_token.encode() not in stored
        assert tokens.refresh_token is not None
        assert tokens.refresh_token.encode() not in stored
        assert tokens.scopes == ("accounts:read",)
    assert harness.sandbox.stats()["authorizations"] == 3
    assert harness.sandbox.stats()["tokens_issued"] >= 3


async def test_access_token_works_at_sandbox(harness: Harness) -> None:
    connection_id = await _connect(harness, uuid.uuid4())
    async with harness.services.unit_of_work(readonly=True) as work:
        connection = await work.connections.find_by_id(connection_id)
    assert connection is not None
    tokens = open_token_set(harness.services.keyring, connection)

    with harness.sandbox.client() as client:
        response = client.get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens.access_token}"}
        )

    assert response.status_code == 200


async def test_reconnect_keeps_connection_id(harness: Harness) -> None:
    user = uuid.uuid4()
    connection_id = await _connect(harness, user)

    async with CallbackServer() as server:
        request = await harness.service.start_reconnect(
            connection_id,
            redirect_uri=server.redirect_uri,
            extra_params={"login_hint": str(user)},
        )
        await _approve(request)
        callback = AuthorizationCallback.from_query(await server.wait())
        connection = await harness.service.complete_authorization(
            callback, provider_slug="sandbox", redirect_uri=server.redirect_uri
        )

    assert connection.id == connection_id
    assert request.connection_id == connection_id
    assert connection.status is ConnectionStatus.ACTIVE
    async with harness.services.unit_of_work(readonly=True) as work:
        events = await work.events.list_for_connection(connection_id)
    assert [e.event_type for e in events][-1] is EventType.RECONNECTED


async def test_disconnect_revokes_once(harness: Harness) -> None:
    user = uuid.uuid4()
    connection_id = await _connect(harness, user)

    first = await harness.service.disconnect(connection_id)
    second = await harness.service.disconnect(connection_id)

    assert first.revoked is True
    assert first.connection.status is ConnectionStatus.DISCONNECTED
    assert first.connection.credentials is None
    assert second.revoked is False
    assert second.connection.status is ConnectionStatus.DISCONNECTED
    assert harness.sandbox.stats()["revocations"] == 1
    grants = harness.sandbox.grants(str(user))
    assert grants[0]["refresh_token_sha256"] is None


async def _pending(
    harness: Harness, server: CallbackServer
) -> tuple[AuthorizationRequest, AuthorizationCallback]:
    user = uuid.uuid4()
    request = await harness.service.start_authorization(
        user_id=user,
        provider_slug="sandbox",
        redirect_uri=server.redirect_uri,
        extra_params={"login_hint": str(user)},
    )
    await _approve(request)
    return request, AuthorizationCallback.from_query(await server.wait())


async def _status(harness: Harness, connection_id: uuid.UUID) -> ConnectionStatus:
    async with harness.services.unit_of_work(readonly=True) as work:
        connection = await work.connections.find_by_id(connection_id)
    assert connection is not None
    return connection.status


async def test_state_checks_change_nothing(harness: Harness) -> None:
    async with CallbackServer() as server:
        request, callback = await _pending(harness, server)
        uri = server.redirect_uri

        with pytest.raises(InvalidStateError, match="another provider"):
            await harness.service.complete_authorization(
                callback, provider_slug="sandbox-twin", redirect_uri=uri
            )
        with pytest.raises(InvalidStateError, match="redirect URI"):
            await harness.service.complete_authorization(
                callback, provider_slug="sandbox", redirect_uri=uri + "/other"
            )
        assert await _status(harness, request.connection_id) is ConnectionStatus.PENDING

        completed = await harness.service.complete_authorization(
            callback, provider_slug="sandbox", redirect_uri=uri
        )
        with pytest.raises(InvalidStateError, match="already used"):
            await harness.service.complete_authorization(
                callback, provider_slug="sandbox", redirect_uri=uri
            )

    assert completed.status is ConnectionStatus.ACTIVE
    assert await _status(harness, request.connection_id) is ConnectionStatus.ACTIVE


async def test_expired_state_rejected(harness: Harness) -> None:
    async with CallbackServer() as server:
        request, callback = await _pending(harness, server)
        harness.clock.advance(timedelta(minutes=11))

        with pytest.raises(InvalidStateError, match="expired"):
            await harness.service.complete_authorization(
                callback, provider_slug="sandbox", redirect_uri=server.redirect_uri
            )

    assert await _status(harness, request.connection_id) is ConnectionStatus.PENDING


async def test_unknown_state_rejected(harness: Harness) -> None:
    callback = AuthorizationCallback(state="never-issued", code="x")

    with pytest.raises(InvalidStateError, match="unknown"):
        await harness.service.complete_authorization(
            callback, provider_slug="sandbox", redirect_uri="http://127.0.0.1:1/cb"
        )


async def test_access_denied_marks_failed(harness: Harness) -> None:
    async with CallbackServer() as server:
        request = await harness.service.start_authorization(
            user_id=uuid.uuid4(),
            provider_slug="sandbox",
            redirect_uri=server.redirect_uri,
            extra_params={"login_hint": "someone", "sandbox_deny": "1"},
        )
        await _approve(request)
        callback = AuthorizationCallback.from_query(await server.wait())

        with pytest.raises(AuthorizationDeniedError, match="access_denied"):
            await harness.service.complete_authorization(
                callback, provider_slug="sandbox", redirect_uri=server.redirect_uri
            )

    assert await _status(harness, request.connection_id) is ConnectionStatus.FAILED
    async with harness.services.unit_of_work(readonly=True) as work:
        events = await work.events.list_for_connection(request.connection_id)
    assert events[-1].event_type is EventType.CONNECT_FAILED
    assert events[-1].reason is not None
    assert "access_denied" in events[-1].reason


async def test_failed_exchange_marks_failed(harness: Harness) -> None:
    async with CallbackServer() as server:
        request, callback = await _pending(harness, server)
        harness.sandbox.add_fault(mode="invalid_grant", count=1)

        with pytest.raises(AuthorizationDeniedError, match="invalid_grant"):
            await harness.service.complete_authorization(
                callback, provider_slug="sandbox", redirect_uri=server.redirect_uri
            )

    assert await _status(harness, request.connection_id) is ConnectionStatus.FAILED


async def test_failed_reconnect_keeps_status(harness: Harness) -> None:
    user = uuid.uuid4()
    connection_id = await _connect(harness, user)

    async with CallbackServer() as server:
        request = await harness.service.start_reconnect(
            connection_id,
            redirect_uri=server.redirect_uri,
            extra_params={"login_hint": str(user), "sandbox_deny": "1"},
        )
        await _approve(request)
        callback = AuthorizationCallback.from_query(await server.wait())
        with pytest.raises(AuthorizationDeniedError):
            await harness.service.complete_authorization(
                callback, provider_slug="sandbox", redirect_uri=server.redirect_uri
            )

    assert await _status(harness, connection_id) is ConnectionStatus.ACTIVE
    async with harness.services.unit_of_work(readonly=True) as work:
        events = await work.events.list_for_connection(connection_id)
    assert events[-1].event_type is EventType.RECONNECT_FAILED


async def _state_stored(harness: Harness, callback: AuthorizationCallback) -> bool:
    async with harness.services.unit_of_work(readonly=True) as work:
        state = await work.states.find_by_hash(hash_state(callback.state))
    return state is not None


async def test_prune_deletes_only_expired_states(harness: Harness) -> None:
    async with CallbackServer() as server:
        _, abandoned = await _pending(harness, server)
    harness.clock.advance(timedelta(minutes=11))
    async with CallbackServer() as server:
        _, fresh = await _pending(harness, server)

    removed = await harness.service.prune_expired_states()

    assert removed == 1
    assert await _state_stored(harness, abandoned) is False
    assert await _state_stored(harness, fresh) is True
