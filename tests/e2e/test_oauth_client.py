"""The httpx token endpoint client: client authentication, revocation, failures."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from harness import sandbox_provider
from sandbox_process import SandboxHandle

from linkvault.adapters.oauth import HttpTokenEndpoint
from linkvault.domain import (
    TokenEndpointAuth,
    TokenErrorKind,
    TokenFailure,
    TokenResponseSettings,
    TokenSet,
    TokenSuccess,
)
from linkvault.ports.token_endpoint import ClientCredentials

pytestmark = pytest.mark.e2e

CONFIDENTIAL = ClientCredentials("sandbox-confidential", "sandbox-secret")


def _authorization_code(sandbox: SandboxHandle, client_id: str) -> tuple[str, str]:
    """Return a fresh authorization code and its redirect URI, without PKCE."""
    redirect_uri = "http://127.0.0.1:9/callback"
    with sandbox.client() as client:
        response = client.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "login_hint": str(uuid.uuid4()),
                "state": "s",
            },
        )
    location = httpx.URL(response.headers["location"])
    return location.params["code"], redirect_uri


@pytest.mark.parametrize(
    "method",
    [TokenEndpointAuth.CLIENT_SECRET_BASIC, TokenEndpointAuth.CLIENT_SECRET_POST],
)
async def test_exchange_with_client_secret(
    sandbox: SandboxHandle, method: TokenEndpointAuth
) -> None:
    provider = sandbox_provider("sandbox", sandbox.url, token_endpoint_auth=method)
    code, redirect_uri = _authorization_code(sandbox, CONFIDENTIAL.client_id)
    endpoint = HttpTokenEndpoint()

    outcome = await endpoint.exchange_code(
        provider,
        CONFIDENTIAL,
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=None,
        now=datetime.now(UTC),
    )
    await endpoint.aclose()

    assert isinstance(outcome, TokenSuccess)
    assert outcome.token_set.refresh_token is not None
    assert outcome.token_set.token_type == "Bearer"


async def test_wrong_client_secret_is_misconfigured(sandbox: SandboxHandle) -> None:
    provider = sandbox_provider("sandbox", sandbox.url)
    code, redirect_uri = _authorization_code(sandbox, CONFIDENTIAL.client_id)
    endpoint = HttpTokenEndpoint()

    outcome = await endpoint.exchange_code(
        provider,
        ClientCredentials("sandbox-confidential", "wrong"),
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=None,
        now=datetime.now(UTC),
    )
    await endpoint.aclose()

    assert isinstance(outcome, TokenFailure)
    assert outcome.kind is TokenErrorKind.CLIENT_MISCONFIGURED
    assert "wrong" not in repr(outcome)


async def test_revoke_and_missing_url(sandbox: SandboxHandle) -> None:
    provider = sandbox_provider("sandbox", sandbox.url)
    no_revocation = sandbox_provider("plain", sandbox.url, revocation_url=None)
    endpoint = HttpTokenEndpoint()

    revoked = await endpoint.revoke(
        provider, CONFIDENTIAL, token="unknown-token", token_type_hint="refresh_token"
    )
    skipped = await endpoint.revoke(
        no_revocation, CONFIDENTIAL, token="t", token_type_hint="refresh_token"
    )
    await endpoint.aclose()

    assert revoked.revoked is True
    assert skipped.revoked is False
    assert skipped.reason is not None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_refused_connection_is_transient() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    provider = sandbox_provider("down", url)
    endpoint = HttpTokenEndpoint()
    tokens = TokenSet(access_token="a", refresh_token="secret-refresh")

    outcome = await endpoint.refresh(
        provider, CONFIDENTIAL, tokens=tokens, now=datetime.now(UTC), authorized_at=None
    )
    await endpoint.aclose()

    assert isinstance(outcome, TokenFailure)
    assert outcome.kind is TokenErrorKind.TRANSIENT
    assert outcome.error == "network_error"
    assert "secret-refresh" not in repr(outcome)


async def test_oversized_body_is_transient() -> None:
    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "x" * 200_000})

    client = httpx.AsyncClient(transport=httpx.MockTransport(huge))
    endpoint = HttpTokenEndpoint(client=client)
    provider = sandbox_provider(
        "big",
        "http://127.0.0.1:9",
        token_response=TokenResponseSettings(max_body_bytes=1024),
    )
    tokens = TokenSet(access_token="a", refresh_token="r")

    outcome = await endpoint.refresh(
        provider, CONFIDENTIAL, tokens=tokens, now=datetime.now(UTC), authorized_at=None
    )
    await endpoint.aclose()

    assert isinstance(outcome, TokenFailure)
    assert outcome.kind is TokenErrorKind.TRANSIENT


async def test_refresh_sends_basic_auth_and_form() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "new", "expires_in": 60})

    endpoint = HttpTokenEndpoint(
        client=httpx.AsyncClient(transport=httpx.MockTransport(record))
    )
    provider = sandbox_provider("form", "http://127.0.0.1:9")
    tokens = TokenSet(access_token="a", refresh_token="old-refresh")

    outcome = await endpoint.refresh(
        provider, CONFIDENTIAL, tokens=tokens, now=datetime.now(UTC), authorized_at=None
    )
    await endpoint.aclose()

    (request,) = seen
    form = dict(httpx.QueryParams(request.content.decode()))
    assert isinstance(outcome, TokenSuccess)
    assert outcome.token_set.refresh_token == "old-refresh"
    assert request.headers["authorization"].startswith("Basic ")
    assert form == {"grant_type": "refresh_token", "refresh_token": "old-refresh"}
