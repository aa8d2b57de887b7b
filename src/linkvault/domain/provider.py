"""Providers: the external systems that hold users' data, and their auth settings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from linkvault.domain.errors import InvalidProviderError
from linkvault.domain.status import CredentialType
from linkvault.domain.timeutil import optional_aware
from linkvault.domain.token_response import TokenResponseSettings

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class TokenEndpointAuth(StrEnum):
    """Client authentication method at the token endpoint (RFC 6749 section 2.3)."""

    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    NONE = "none"


@dataclass(slots=True)
class RefreshPolicy:
    """When to refresh a provider's connections and how long to keep trying."""

    # Refresh this long before the access token expires. None uses 20% of the
    # token's lifetime, clamped to [10 s, 30 min].
    margin: timedelta | None = None
    # How long transient failures may go on before a connection becomes
    # `failed`; the refresh token's own expiry ends it sooner.
    failure_budget: timedelta = timedelta(days=4)

    def __post_init__(self) -> None:
        if self.margin is not None and self.margin < timedelta(0):
            raise InvalidProviderError(
                f"refresh margin {self.margin} is negative; use a positive duration."
            )
        if self.failure_budget <= timedelta(0):
            raise InvalidProviderError(
                f"failure_budget {self.failure_budget} must be positive."
            )


@dataclass(slots=True)
class Provider:
    """An external system and how linkvault authenticates against it."""

    id: UUID
    slug: str
    name: str
    credential_type: CredentialType
    authorization_url: str | None = None
    token_url: str | None = None
    revocation_url: str | None = None
    client_id: str | None = None
    # Name of the environment variable that contains the client secret.
    client_secret_env: str | None = None
    # Keyring blob of the client secret, when stored instead of an env variable.
    client_secret_encrypted: bytes | None = None
    scopes: tuple[str, ...] = ()
    token_endpoint_auth: TokenEndpointAuth = TokenEndpointAuth.CLIENT_SECRET_BASIC
    use_pkce: bool = True
    extra_authorize_params: dict[str, str] = field(default_factory=dict)
    refresh_policy: RefreshPolicy = field(default_factory=RefreshPolicy)
    # Lifetimes, the refresh token's clock and error-code mapping of responses.
    token_response: TokenResponseSettings = field(default_factory=TokenResponseSettings)
    paused_at: datetime | None = None
    paused_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not _SLUG.match(self.slug):
            raise InvalidProviderError(
                f"Provider slug {self.slug!r} is invalid; use 1-64 lowercase "
                "letters, digits, '-' or '_', starting with a letter or digit."
            )
        if not self.name.strip():
            raise InvalidProviderError(f"Provider {self.slug!r} needs a name.")
        self.credential_type = CredentialType(self.credential_type)
        self.token_endpoint_auth = TokenEndpointAuth(self.token_endpoint_auth)
        self.scopes = tuple(self.scopes)
        self.paused_at = optional_aware(self.paused_at, "paused_at")
        if self.credential_type is CredentialType.OAUTH2:
            self._check_oauth_settings()

    def _check_oauth_settings(self) -> None:
        missing = [
            name
            for name in ("authorization_url", "token_url", "client_id")
            if not getattr(self, name)
        ]
        if missing:
            raise InvalidProviderError(
                f"OAuth 2.0 provider {self.slug!r} is missing "
                f"{', '.join(missing)}; set them in the provider definition."
            )

    def __repr__(self) -> str:
        secret = "<encrypted>" if self.client_secret_encrypted else None
        return (
            f"Provider(id={self.id}, slug={self.slug!r}, "
            f"credential_type={self.credential_type.value!r}, "
            f"client_secret_env={self.client_secret_env!r}, "
            f"client_secret_encrypted={secret!r}, paused={self.is_paused})"
        )

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None
