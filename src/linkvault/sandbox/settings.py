"""Settings of the sandbox authorization server.

Every lifetime is in whole seconds, because `expires_in` in a token response is
an integer number of seconds (RFC 6749 section 5.1).
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

TokenEndpointAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
RefreshTokenClock = Literal["sliding", "fixed"]

ALL_TOKEN_ENDPOINT_AUTH_METHODS: tuple[TokenEndpointAuthMethod, ...] = (
    "client_secret_basic",
    "client_secret_post",
    "none",
)

DEFAULT_CONFIDENTIAL_CLIENT_ID = "sandbox-confidential"
DEFAULT_CONFIDENTIAL_CLIENT_SECRET = "sandbox-secret"
DEFAULT_PUBLIC_CLIENT_ID = "sandbox-public"


class SandboxClient(BaseModel):
    """A registered OAuth client.

    A client without a secret is public: it authenticates with the token
    endpoint auth method `none` and must use PKCE with S256.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1, pattern=r"^[^:\s]+$")
    client_secret: SecretStr | None = None

    @property
    def is_public(self) -> bool:
        """Whether the client has no secret and authenticates with `none`."""
        return self.client_secret is None

    @classmethod
    def parse(cls, value: str) -> SandboxClient:
        """Parse `ID:SECRET` into a confidential client.

        Raises:
            ValueError: the value has no colon, or the id or secret is empty.
        """
        client_id, colon, secret = value.partition(":")
        if not colon or not client_id or not secret:
            raise ValueError(
                "A confidential client must be given as ID:SECRET, with a "
                "non-empty id and secret, for example sandbox-confidential:s3cret."
            )
        return cls(client_id=client_id, client_secret=SecretStr(secret))


DEFAULT_CLIENTS: tuple[SandboxClient, ...] = (
    SandboxClient(
        client_id=DEFAULT_CONFIDENTIAL_CLIENT_ID,
        client_secret=SecretStr(DEFAULT_CONFIDENTIAL_CLIENT_SECRET),
    ),
    SandboxClient(client_id=DEFAULT_PUBLIC_CLIENT_ID),
)


class SandboxSettings(BaseModel):
    """Settings of one sandbox server process.

    Attributes:
        host: Loopback address to bind; `localhost` binds 127.0.0.1.
        port: TCP port to bind; 0 lets the operating system pick a free port.
        access_token_lifetime: Seconds an access token stays valid.
        refresh_token_lifetime: Seconds a refresh token stays valid, or None
            for refresh tokens that never expire.
        refresh_token_clock: With `sliding`, each rotated refresh token's
            lifetime starts at its issue. With `fixed`, it counts from the
            first authorization of the grant, as at providers that force
            re-consent after a fixed time.
        authorization_code_lifetime: Seconds an authorization code can be
            redeemed.
        send_refresh_token_expires_in: Whether token responses carry
            `refresh_token_expires_in`.
        omit_expires_in: Leave `expires_in` out of token responses, as some
            providers do, while access tokens still expire on schedule.
        clients: Registered clients, confidential and public.
        token_endpoint_auth_methods: Client authentication methods that the
            token and revocation endpoints accept.
        redirect_uris: Non-loopback redirect URIs registered for every client;
            loopback redirect URIs on any port are always accepted.
        denied_users: Users whose authorization requests are denied with
            `access_denied`.
        default_scope: Scope granted when an authorization request has none.
        admin_token: Token that the `/_sandbox/` admin API requires in the
            `X-Sandbox-Admin-Token` header, or None for no token.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    access_token_lifetime: int = Field(default=3600, gt=0)
    refresh_token_lifetime: int | None = Field(default=7 * 24 * 3600, gt=0)
    refresh_token_clock: RefreshTokenClock = "sliding"
    authorization_code_lifetime: int = Field(default=60, gt=0)
    send_refresh_token_expires_in: bool = False
    omit_expires_in: bool = False
    clients: tuple[SandboxClient, ...] = DEFAULT_CLIENTS
    token_endpoint_auth_methods: tuple[TokenEndpointAuthMethod, ...] = (
        ALL_TOKEN_ENDPOINT_AUTH_METHODS
    )
    redirect_uris: tuple[str, ...] = ()
    denied_users: tuple[str, ...] = ()
    default_scope: str = Field(default="read", min_length=1)
    admin_token: SecretStr | None = None

    @field_validator("host")
    @classmethod
    def _require_loopback_host(cls, host: str) -> str:
        return normalize_loopback_host(host)

    @field_validator("clients")
    @classmethod
    def _require_unique_clients(
        cls, clients: tuple[SandboxClient, ...]
    ) -> tuple[SandboxClient, ...]:
        if not clients:
            raise ValueError("clients is empty; register at least one client.")

        ids = [client.client_id for client in clients]
        duplicates = sorted(
            {client_id for client_id in ids if ids.count(client_id) > 1}
        )
        if duplicates:
            raise ValueError(
                f"client ids {duplicates} are registered more than once; "
                "give each client its own id."
            )

        return clients

    @field_validator("token_endpoint_auth_methods")
    @classmethod
    def _require_auth_methods(
        cls, methods: tuple[TokenEndpointAuthMethod, ...]
    ) -> tuple[TokenEndpointAuthMethod, ...]:
        if not methods:
            raise ValueError(
                "token_endpoint_auth_methods is empty; allow at least one of "
                f"{list(ALL_TOKEN_ENDPOINT_AUTH_METHODS)}."
            )

        return tuple(dict.fromkeys(methods))

    @field_validator("redirect_uris")
    @classmethod
    def _require_absolute_redirect_uris(cls, uris: tuple[str, ...]) -> tuple[str, ...]:
        for uri in uris:
            parts = urlsplit(uri)
            # RFC 6749 section 3.1.2: absolute URI, no fragment component.
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"redirect URI {uri!r} is not an absolute http(s) URI; "
                    "register a URI such as https://app.example/callback."
                )
            if parts.fragment:
                raise ValueError(
                    f"redirect URI {uri!r} has a fragment, which RFC 6749 "
                    "forbids; remove the part after '#'."
                )

        return uris


def normalize_loopback_host(host: str) -> str:
    """Return the loopback IP address to bind for `host`.

    Host names other than `localhost` are rejected without a DNS lookup, so a
    name can never make the sandbox listen beyond this machine.

    Raises:
        ValueError: `host` is not `localhost` or a loopback IP address.
    """
    if host == "localhost":
        return "127.0.0.1"

    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None

    if address is None or not address.is_loopback:
        raise ValueError(
            f"host {host!r} is not a loopback address. The sandbox issues tokens "
            "to any caller without a password, so it binds loopback only: use "
            "127.0.0.1, ::1 or localhost."
        )

    return str(address)


def loopback_url(host: str, port: int) -> str:
    """Build `http://HOST:PORT`, bracketing an IPv6 address."""
    if ":" in host:
        return f"http://[{host}]:{port}"

    return f"http://{host}:{port}"
