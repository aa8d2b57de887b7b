"""The token endpoint client on aiohttp and httpx: authentication and failures."""

from __future__ import annotations

import asyncio
import base64
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from aiohttp import web
from harness import sandbox_provider
from sandbox_process import SandboxHandle

from linkvault.adapters.oauth import HttpTokenEndpoint
from linkvault.adapters.oauth.transports import HttpClientName
from linkvault.domain import (
    Provider,
    TokenEndpointAuth,
    TokenErrorKind,
    TokenFailure,
    TokenOutcome,
    TokenResponseSettings,
    TokenSet,
    TokenSuccess,
)
from linkvault.ports.token_endpoint import ClientCredentials

pytestmark = pytest.mark.e2e

CONFIDENTIAL = ClientCredentials("sandbox-confidential", "sandbox-secret")


@pytest.fixture(params=["aiohttp", "httpx"])
def http_client(request: pytest.FixtureRequest) -> HttpClientName:
    name: HttpClientName = request.param
    return name


@dataclass
class LoopbackEndpoint:
    """A token endpoint on loopback that records requests and sends `reply`."""

    url: str
    requests: list[tuple[dict[str, str], dict[str, str]]] = field(default_factory=list)
    reply: dict[str, object] = field(default_factory=dict)
    delay: float = 0.0


@pytest.fixture
async def loopback() -> AsyncIterator[LoopbackEndpoint]:
    endpoint = LoopbackEndpoint(url="")

    async def token(request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        endpoint.requests.append((dict(request.headers), form))
        await asyncio.sleep(endpoint.delay)
        return web.json_response(endpoint.reply)

    app = web.Application()
    app.router.add_post("/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    endpoint.url = f"http://127.0.0.1:{port}"
    try:
        yield endpoint
    finally:
        await runner.cleanup()


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
    sandbox: SandboxHandle, method: TokenEndpointAuth, http_client: HttpClientName
) -> None:
    provider = sandbox_provider("sandbox", sandbox.url, token_endpoint_auth=method)
    code, redirect_uri = _authorization_code(sandbox, CONFIDENTIAL.client_id)
    endpoint = HttpTokenEndpoint(http_client=http_client)

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


async def test_wrong_client_secret_is_misconfigured(
    sandbox: SandboxHandle, http_client: HttpClientName
) -> None:
    provider = sandbox_provider("sandbox", sandbox.url)
    code, redirect_uri = _authorization_code(sandbox, CONFIDENTIAL.client_id)
    endpoint = HttpTokenEndpoint(http_client=http_client)

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


async def test_revoke_and_missing_url(
    sandbox: SandboxHandle, http_client: HttpClientName
) -> None:
    provider = sandbox_provider("sandbox", sandbox.url)
    no_revocation = sandbox_provider("plain", sandbox.url, revocation_url=None)
    endpoint = HttpTokenEndpoint(http_client=http_client)

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


async def refresh_once(
    endpoint: HttpTokenEndpoint, provider: Provider, refresh_token: str
) -> TokenOutcome:
    """Redeem `refresh_token` once, then close the endpoint's client."""
    tokens = TokenSet(access_token="a", refresh_token=refresh_token)
    try:
        return await endpoint.refresh(
            provider,
            CONFIDENTIAL,
            tokens=tokens,
            now=datetime.now(UTC),
            authorized_at=None,
        )
    finally:
        await endpoint.aclose()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_refused_connection_is_transient(http_client: HttpClientName) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    provider = sandbox_provider("down", url)
    endpoint = HttpTokenEndpoint(http_client=http_client)

    outcome = await refresh_once(endpoint, provider, "secret-refresh")

    assert isinstance(outcome, TokenFailure)
    assert outcome.kind is TokenErrorKind.TRANSIENT
    assert outcome.error == "network_error"
    assert "secret-refresh" not in repr(outcome)


async def test_oversized_body_is_transient(
    loopback: LoopbackEndpoint, http_client: HttpClientName
) -> None:
    loopback.reply = {"access_token": "x" * 200_000}
    endpoint = HttpTokenEndpoint(http_client=http_client)
    provider = sandbox_provider(
        "big",
        loopback.url,
        token_response=TokenResponseSettings(max_body_bytes=1024),
    )

    outcome = await refresh_once(endpoint, provider, "r")

    assert isinstance(outcome, TokenFailure)
    assert outcome.kind is TokenErrorKind.TRANSIENT
    assert "1024" in outcome.description


async def test_slow_endpoint_times_out(
    loopback: LoopbackEndpoint, http_client: HttpClientName
) -> None:
    loopback.delay = 2.0
    endpoint = HttpTokenEndpoint(http_client=http_client, timeout=0.3)
    provider = sandbox_provider("slow", loopback.url)

    outcome = await refresh_once(endpoint, provider, "secret-refresh")

    assert isinstance(outcome, TokenFailure)
    assert outcome.kind is TokenErrorKind.TRANSIENT
    assert outcome.error == "timeout"
    assert "secret-refresh" not in repr(outcome)


async def test_refresh_sends_basic_auth_and_form(
    loopback: LoopbackEndpoint, http_client: HttpClientName
) -> None:
    loopback.reply = {"access_token": "new", "expires_in": 60}
    endpoint = HttpTokenEndpoint(http_client=http_client)
    provider = sandbox_provider("form", loopback.url)

    outcome = await refresh_once(endpoint, provider, "old-refresh")

    ((headers, form),) = loopback.requests
    expected = base64.b64encode(b"sandbox-confidential:sandbox-secret").decode()
    assert isinstance(outcome, TokenSuccess)
    assert outcome.token_set.refresh_token == "old-refresh"
    assert headers["Authorization"] == f"Basic {expected}"
    assert headers["Accept"] == "application/json"
    assert form == {"grant_type": "refresh_token", "refresh_token": "old-refresh"}


async def test_custom_httpx_client_is_used() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "new", "expires_in": 60})

    endpoint = HttpTokenEndpoint(
        client=httpx.AsyncClient(transport=httpx.MockTransport(record))
    )
    provider = sandbox_provider("form", "http://127.0.0.1:9")

    outcome = await refresh_once(endpoint, provider, "old-refresh")

    assert isinstance(outcome, TokenSuccess)
    assert len(seen) == 1
