"""Registering the sandbox provider and connecting users through OAuth 2.0.

Each user goes through the whole authorization code flow with PKCE. The
demo requests an authorization URL and follows it as the user's browser
would. The sandbox approves the user named in `login_hint` and redirects to
a loopback callback server (RFC 8252 section 7.3), and the demo exchanges
the code for tokens.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx

from linkvault.application.connect import AuthorizationCallback, ConnectService
from linkvault.bootstrap import Services
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.provider import Provider, TokenEndpointAuth
from linkvault.domain.status import CredentialType
from linkvault.entrypoints.callback_server import CallbackServer
from linkvault.entrypoints.demo.errors import DemoError
from linkvault.ids import new_id
from linkvault.sandbox.settings import DEFAULT_CONFIDENTIAL_CLIENT_ID

PROVIDER_SLUG = "sandbox"
# Environment variable that carries the client secret to the workers.
CLIENT_SECRET_ENV = "SANDBOX_CLIENT_SECRET"
# Authorizations in flight at once. Each runs its own callback server, whose
# shutdown takes up to half a second, so overlapping them keeps connecting quick.
CONNECT_CONCURRENCY = 16
# Seconds to wait for the sandbox's redirect to reach the callback server.
CALLBACK_TIMEOUT = 30.0


def sandbox_provider(url: str) -> Provider:
    """Return the provider definition of the sandbox at `url`."""
    return Provider(
        id=new_id(),
        slug=PROVIDER_SLUG,
        name="Sandbox brokerage",
        credential_type=CredentialType.OAUTH2,
        authorization_url=f"{url}/authorize",
        token_url=f"{url}/token",
        revocation_url=f"{url}/revoke",
        client_id=DEFAULT_CONFIDENTIAL_CLIENT_ID,
        client_secret_env=CLIENT_SECRET_ENV,
        scopes=("accounts:read",),
        token_endpoint_auth=TokenEndpointAuth.CLIENT_SECRET_BASIC,
    )


async def register_provider(services: Services, provider: Provider) -> None:
    async with services.unit_of_work() as work:
        await work.providers.save(provider)


async def connect_users(
    service: ConnectService,
    users: int,
    on_connected: Callable[[ProviderConnection], None],
) -> list[ProviderConnection]:
    """Connect `users` new users to the sandbox, calling `on_connected` for each.

    Raises:
        DemoError: A flow did not complete. The message names the user.
    """
    slots = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect_one(browser: httpx.AsyncClient) -> ProviderConnection:
        async with slots:
            connection = await _authorize(service, browser, uuid.uuid4())
        on_connected(connection)
        return connection

    try:
        async with (
            httpx.AsyncClient(follow_redirects=True, trust_env=False) as browser,
            asyncio.TaskGroup() as group,
        ):
            tasks = [group.create_task(connect_one(browser)) for _ in range(users)]
    except ExceptionGroup as failures:
        # The first failure explains the rest, which were cancelled with it.
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]


async def _authorize(
    service: ConnectService, browser: httpx.AsyncClient, user_id: uuid.UUID
) -> ProviderConnection:
    async with CallbackServer() as server:
        request = await service.start_authorization(
            user_id=user_id,
            provider_slug=PROVIDER_SLUG,
            redirect_uri=server.redirect_uri,
            extra_params={"login_hint": str(user_id)},
        )
        # The browser's part: the sandbox approves at once and redirects.
        try:
            response = await browser.get(request.url)
        except httpx.HTTPError as error:
            raise DemoError(
                f"The authorization request of user {user_id} failed ({error}); "
                "the sandbox's output is in sandbox.log."
            ) from error
        if response.status_code != 200:
            raise DemoError(
                f"The authorization request of user {user_id} ended with HTTP "
                f"{response.status_code}; the sandbox's output is in sandbox.log."
            )
        try:
            async with asyncio.timeout(CALLBACK_TIMEOUT):
                query = await server.wait()
        except TimeoutError:
            raise DemoError(
                f"The callback of user {user_id} did not arrive within "
                f"{CALLBACK_TIMEOUT:g} seconds."
            ) from None

        callback = AuthorizationCallback.from_query(query)
        return await service.complete_authorization(
            callback, provider_slug=PROVIDER_SLUG, redirect_uri=server.redirect_uri
        )
