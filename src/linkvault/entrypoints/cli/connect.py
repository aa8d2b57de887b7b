"""`linkvault connect` and `connections reconnect|disconnect`: link and unlink."""

from __future__ import annotations

import asyncio
import os
import webbrowser
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated

import httpx
import typer

from linkvault.application.connect import (
    AuthorizationCallback,
    AuthorizationRequest,
    ConnectService,
)
from linkvault.bootstrap import Services
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.errors import ConfigurationError, ProviderNotFoundError
from linkvault.domain.status import CredentialType
from linkvault.entrypoints.callback_server import CallbackServer
from linkvault.entrypoints.cli._common import console, parse_uuid, with_services


class UserAgentMode(StrEnum):
    """Way the user reaches the provider's authorisation page."""

    PRINT = "print"
    OPEN = "open"
    FOLLOW = "follow"


class _Options:
    """Settings for the user's part of the flow, as the CLI drives it."""

    def __init__(
        self, port: int, timeout: float, login_hint: str | None, mode: UserAgentMode
    ) -> None:
        self.port = port
        self.timeout = timeout
        self.login_hint = login_hint
        self.mode = mode

    def extra_params(self) -> dict[str, str]:
        return {"login_hint": self.login_hint} if self.login_hint else {}


PortOption = Annotated[
    int, typer.Option(help="Loopback port for the redirect URI (0 picks a free one).")
]
TimeoutOption = Annotated[
    float, typer.Option(help="Seconds to wait for the provider's redirect.")
]
HintOption = Annotated[
    str | None,
    typer.Option(help="login_hint to send; the sandbox approves this user at once."),
]
ModeOption = Annotated[
    UserAgentMode,
    typer.Option(
        help=(
            "print: show the URL; open: also open a browser; follow: fetch the URL "
            "here (for servers that approve without a login page, like the sandbox)."
        )
    ),
]


def connect(
    ctx: typer.Context,
    provider: Annotated[str, typer.Argument(help="Provider slug.")],
    user: Annotated[str, typer.Option("--user", help="The user's id (UUID).")],
    alias: Annotated[str | None, typer.Option(help="A name for the account.")] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(help="For API-key providers: variable holding the API key."),
    ] = None,
    port: PortOption = 0,
    timeout: TimeoutOption = 600.0,
    login_hint: HintOption = None,
    mode: ModeOption = UserAgentMode.PRINT,
) -> None:
    """Link a user's account at a provider: OAuth 2.0 with PKCE, or an API key."""
    user_id = parse_uuid(user, "User id")
    options = _Options(port, timeout, login_hint, mode)

    async def body(services: Services) -> ProviderConnection:
        async with services.unit_of_work(readonly=True) as work:
            found = await work.providers.get_by_slug(provider)
        if found is None:
            raise ProviderNotFoundError(provider)
        service = services.connect_service()
        if found.credential_type is CredentialType.API_KEY:
            return await service.connect_api_key(
                user_id=user_id,
                provider_slug=provider,
                api_key=_api_key(api_key_env),
                alias=alias,
            )
        return await _oauth_flow(
            service,
            provider,
            options,
            lambda redirect_uri: service.start_authorization(
                user_id=user_id,
                provider_slug=provider,
                redirect_uri=redirect_uri,
                alias=alias,
                extra_params=options.extra_params(),
            ),
        )

    connection = with_services(ctx, body)
    console.print(
        f"Connection {connection.id} to {connection.provider_slug} is "
        f"{connection.status.value}."
    )


def reconnect(
    ctx: typer.Context,
    connection_id: Annotated[str, typer.Argument(help="Connection id (UUID).")],
    port: PortOption = 0,
    timeout: TimeoutOption = 600.0,
    login_hint: HintOption = None,
    mode: ModeOption = UserAgentMode.PRINT,
) -> None:
    """Authorise an existing connection again, keeping its id."""
    wanted = parse_uuid(connection_id, "Connection id")
    options = _Options(port, timeout, login_hint, mode)

    async def body(services: Services) -> ProviderConnection:
        async with services.unit_of_work(readonly=True) as work:
            current = await work.connections.find_by_id(wanted)
        slug = current.provider_slug if current else ""
        service = services.connect_service()
        return await _oauth_flow(
            service,
            slug,
            options,
            lambda redirect_uri: service.start_reconnect(
                wanted, redirect_uri=redirect_uri, extra_params=options.extra_params()
            ),
        )

    connection = with_services(ctx, body)
    console.print(f"Connection {connection.id} is {connection.status.value} again.")


def disconnect(
    ctx: typer.Context,
    connection_id: Annotated[str, typer.Argument(help="Connection id (UUID).")],
) -> None:
    """Revoke the grant at the provider when it can, and clear the credentials."""
    wanted = parse_uuid(connection_id, "Connection id")

    async def body(services: Services) -> tuple[bool, str | None]:
        result = await services.connect_service().disconnect(wanted, actor="cli")
        return result.revoked, result.revocation_error

    revoked, error = with_services(ctx, body)
    note = "revoked at the provider" if revoked else "not revoked at the provider"
    if error:
        note += f" ({error})"
    console.print(f"Connection {wanted} is disconnected; {note}.")


async def _oauth_flow(
    service: ConnectService,
    provider_slug: str,
    options: _Options,
    start: Callable[[str], Awaitable[AuthorizationRequest]],
) -> ProviderConnection:
    async with CallbackServer(port=options.port) as server:
        request = await start(server.redirect_uri)
        await _send_user(request.url, options.mode)
        try:
            async with asyncio.timeout(options.timeout):
                query = await server.wait()
        except TimeoutError:
            raise ConfigurationError(
                f"No redirect arrived within {options.timeout:g} seconds; run the "
                "command again and finish the authorisation in the browser."
            ) from None
        callback = AuthorizationCallback.from_query(query)
        return await service.complete_authorization(
            callback, provider_slug=provider_slug, redirect_uri=server.redirect_uri
        )


async def _send_user(url: str, mode: UserAgentMode) -> None:
    if mode is UserAgentMode.FOLLOW:
        # Act as the user agent: follow the provider's redirect to our server.
        async with httpx.AsyncClient(follow_redirects=True, timeout=30) as client:
            await client.get(url)
        return
    console.print("Open this URL to authorise linkvault:")
    console.print(url, soft_wrap=True, markup=False)
    if mode is UserAgentMode.OPEN:
        webbrowser.open(url)


def _api_key(variable: str | None) -> str:
    if variable:
        value = os.environ.get(variable)
        if not value:
            raise ConfigurationError(
                f"Environment variable {variable} is not set or empty; export the "
                "API key in it."
            )
        return value
    value = typer.prompt("API key", hide_input=True)
    return str(value)
