"""The token endpoint port: code exchange, refresh and revocation at a provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from linkvault.domain.credentials import TokenSet
from linkvault.domain.provider import Provider
from linkvault.domain.token_response import TokenOutcome


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """The OAuth client's id and secret for one provider; repr hides the secret."""

    client_id: str
    client_secret: str | None = None

    def __repr__(self) -> str:
        secret = None if self.client_secret is None else "***"
        return (
            f"ClientCredentials(client_id={self.client_id!r}, client_secret={secret})"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class RevocationResult:
    """Whether the provider confirmed the revocation (RFC 7009 section 2.2)."""

    revoked: bool
    # Why not, in one line without secrets; None on success.
    reason: str | None = None


class TokenEndpoint(Protocol):
    """Talks to a provider's token and revocation endpoints.

    Never raises for what the provider sends or for network failures: those
    come back as a classified `TokenFailure`.
    """

    async def exchange_code(
        self,
        provider: Provider,
        client: ClientCredentials,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str | None,
        now: datetime,
    ) -> TokenOutcome:
        """Redeem an authorization code (RFC 6749 section 4.1.3, RFC 7636)."""
        ...

    async def refresh(
        self,
        provider: Provider,
        client: ClientCredentials,
        *,
        tokens: TokenSet,
        now: datetime,
        authorized_at: datetime | None,
    ) -> TokenOutcome:
        """Redeem the refresh token of `tokens` (RFC 6749 section 6)."""
        ...

    async def revoke(
        self,
        provider: Provider,
        client: ClientCredentials,
        *,
        token: str,
        token_type_hint: str,
    ) -> RevocationResult:
        """Revoke a token at the provider's revocation endpoint (RFC 7009)."""
        ...
