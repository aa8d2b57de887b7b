"""An in-process linkvault wired to a sandbox process, for end-to-end tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sandbox_process import SandboxHandle

from linkvault.adapters.clock import FakeClock, SystemClock
from linkvault.adapters.crypto import EncryptionKey, Keyring
from linkvault.adapters.oauth import HttpTokenEndpoint
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.migrate import upgrade
from linkvault.application.connect import (
    AuthorizationCallback,
    AuthorizationRequest,
    ConnectService,
)
from linkvault.application.refresh import RefreshService, RefreshSettings
from linkvault.bootstrap import Services
from linkvault.config import Settings
from linkvault.domain import (
    CredentialType,
    Provider,
    ProviderConnection,
    TokenEndpointAuth,
)
from linkvault.entrypoints.callback_server import CallbackServer
from linkvault.ids import new_id

SECRET_ENV = "SANDBOX_CLIENT_SECRET"
ENVIRON = {SECRET_ENV: "sandbox-secret"}


@dataclass
class Harness:
    """linkvault services on a SQLite file, a fake clock and a sandbox process."""

    services: Services
    service: ConnectService
    endpoint: HttpTokenEndpoint
    clock: FakeClock
    provider: Provider
    other: Provider
    sandbox: SandboxHandle

    def refresh_service(
        self, owner: str = "test-worker", **settings: object
    ) -> RefreshService:
        return RefreshService(
            self.services.unit_of_work,
            self.services.keyring,
            self.clock,
            self.endpoint,
            ENVIRON,
            owner=owner,
            settings=RefreshSettings(**settings),  # type: ignore[arg-type]
        )

    async def connect(self, user_id: uuid.UUID | None = None) -> ProviderConnection:
        """Connect a user through the full authorization code flow."""
        user = user_id or uuid.uuid4()
        async with CallbackServer() as server:
            request = await self.service.start_authorization(
                user_id=user,
                provider_slug=self.provider.slug,
                redirect_uri=server.redirect_uri,
                extra_params={"login_hint": str(user)},
            )
            await approve(request)
            callback = AuthorizationCallback.from_query(await server.wait())
            return await self.service.complete_authorization(
                callback,
                provider_slug=self.provider.slug,
                redirect_uri=server.redirect_uri,
            )

    async def load(self, connection_id: uuid.UUID) -> ProviderConnection:
        async with self.services.unit_of_work(readonly=True) as work:
            connection = await work.connections.find_by_id(connection_id)
        assert connection is not None
        return connection

    async def save_provider(self, provider: Provider) -> None:
        async with self.services.unit_of_work() as work:
            await work.providers.save(provider)


async def approve(request: AuthorizationRequest) -> None:
    """Act as the user's browser: the sandbox approves and redirects."""
    async with httpx.AsyncClient(follow_redirects=True, trust_env=False) as client:
        response = await client.get(request.url)
    assert response.status_code == 200


def sandbox_provider(slug: str, url: str, **overrides: object) -> Provider:
    fields: dict[str, object] = {
        "id": new_id(),
        "slug": slug,
        "name": "Sandbox",
        "credential_type": CredentialType.OAUTH2,
        "authorization_url": f"{url}/authorize",
        "token_url": f"{url}/token",
        "revocation_url": f"{url}/revoke",
        "client_id": "sandbox-confidential",
        "client_secret_env": SECRET_ENV,
        "scopes": ("accounts:read",),
        "token_endpoint_auth": TokenEndpointAuth.CLIENT_SECRET_BASIC,
    }
    fields.update(overrides)
    return Provider(**fields)  # type: ignore[arg-type]


@asynccontextmanager
async def running_harness(
    sandbox: SandboxHandle,
    folder: Path,
    *,
    http_timeout: float = 10.0,
    **provider_overrides: object,
) -> AsyncIterator[Harness]:
    database = Database.from_url(f"sqlite+aiosqlite:///{folder / 'e2e.db'}")
    await upgrade(database)
    clock = FakeClock(SystemClock().now())
    services = Services(
        settings=Settings(database_url="sqlite://", base_dir=folder),
        database=database,
        clock=clock,
        _keyring=Keyring([EncryptionKey.generate("e2e")], primary="e2e"),
    )
    provider = sandbox_provider("sandbox", sandbox.url, **provider_overrides)
    other = sandbox_provider("sandbox-twin", sandbox.url)
    async with services.unit_of_work() as work:
        await work.providers.save(provider)
        await work.providers.save(other)
    endpoint = HttpTokenEndpoint(timeout=http_timeout)
    service = ConnectService(
        services.unit_of_work, services.keyring, clock, endpoint, ENVIRON
    )
    try:
        yield Harness(services, service, endpoint, clock, provider, other, sandbox)
    finally:
        await endpoint.aclose()
        await services.close()
