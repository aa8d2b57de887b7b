"""The token endpoint port over HTTP: code exchange, refresh and revocation.

Responses are judged by `parse_token_response`, which reads the body instead of
trusting the status code. Transport failures (timeouts, refused connections)
become transient `TokenFailure`s, so callers handle one result type. No token,
code, verifier or client secret reaches a log line or an error message.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from datetime import datetime

import httpx

from linkvault.adapters.oauth.transports import (
    DEFAULT_TIMEOUT,
    FormReply,
    FormTransport,
    HttpClientName,
    HttpxTransport,
    TransportError,
    make_transport,
)
from linkvault.domain.credentials import TokenSet
from linkvault.domain.provider import Provider, TokenEndpointAuth
from linkvault.domain.token_response import (
    TokenErrorKind,
    TokenFailure,
    TokenOutcome,
    parse_token_response,
)
from linkvault.ports.token_endpoint import ClientCredentials, RevocationResult

logger = logging.getLogger(__name__)

# Revocation responses are judged by status alone: RFC 7009 section 2.2 has
# the client ignore the body.
_REVOCATION_BODY_BYTES = 64 * 1024


class HttpTokenEndpoint:
    """Token endpoint calls over one shared HTTP client.

    Args:
        timeout: Per-request timeout in seconds; the refresh lease must
            outlast it.
        http_client: "aiohttp" (the default) or "httpx".
        client: An existing httpx client to use (for tests or custom
            transports); it selects httpx.
        transport: Any other `FormTransport`.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: HttpClientName = "aiohttp",
        client: httpx.AsyncClient | None = None,
        transport: FormTransport | None = None,
    ) -> None:
        if transport is not None:
            self._transport = transport
        elif client is not None:
            self._transport = HttpxTransport(client=client)
        else:
            self._transport = make_transport(http_client, timeout)

    async def aclose(self) -> None:
        await self._transport.aclose()

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
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
        }
        if code_verifier is not None:
            form["code_verifier"] = code_verifier
        redact = [code, code_verifier or "", client.client_secret or ""]
        return await self._token_request(
            provider, client, form, now=now, previous=None, redact=redact
        )

    async def refresh(
        self,
        provider: Provider,
        client: ClientCredentials,
        *,
        tokens: TokenSet,
        now: datetime,
        authorized_at: datetime | None,
    ) -> TokenOutcome:
        if tokens.refresh_token is None:
            return TokenFailure(
                kind=TokenErrorKind.REAUTH_REQUIRED,
                status_code=0,
                error="no_refresh_token",
                description="The stored token set has no refresh token.",
            )
        form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        return await self._token_request(
            provider,
            client,
            form,
            now=now,
            previous=tokens,
            authorized_at=authorized_at,
            redact=[client.client_secret or ""],
        )

    async def revoke(
        self,
        provider: Provider,
        client: ClientCredentials,
        *,
        token: str,
        token_type_hint: str,
    ) -> RevocationResult:
        if not provider.revocation_url:
            return RevocationResult(False, f"{provider.slug} has no revocation URL")
        form = {"token": token, "token_type_hint": token_type_hint}

        try:
            response = await self._post(
                provider.revocation_url, provider, client, form, _REVOCATION_BODY_BYTES
            )
        except TransportError as error:
            logger.warning("Revocation at %s failed: %s", provider.slug, error.reason)
            return RevocationResult(False, error.reason)

        # RFC 7009 section 2.2: 200 for revoked and for unknown tokens alike.
        if response.status_code == 200:
            return RevocationResult(True)
        reason = f"HTTP {response.status_code} from the revocation endpoint"
        logger.warning("Revocation at %s failed: %s", provider.slug, reason)
        return RevocationResult(False, reason)

    async def _token_request(
        self,
        provider: Provider,
        client: ClientCredentials,
        form: dict[str, str],
        *,
        now: datetime,
        previous: TokenSet | None,
        redact: list[str],
        authorized_at: datetime | None = None,
    ) -> TokenOutcome:
        if not provider.token_url:
            return TokenFailure(
                kind=TokenErrorKind.CLIENT_MISCONFIGURED,
                status_code=0,
                error="no_token_url",
                description=f"Provider {provider.slug} has no token URL.",
            )
        settings = provider.token_response

        try:
            response = await self._post(
                provider.token_url, provider, client, form, settings.max_body_bytes
            )
        except TransportError as error:
            return _transport_failure(provider, error)

        return parse_token_response(
            response.status_code,
            response.content_type,
            response.body,
            now=now,
            previous=previous,
            settings=settings,
            authorized_at=authorized_at,
            retry_after=response.retry_after,
            redact=[value for value in redact if value],
        )

    async def _post(
        self,
        url: str,
        provider: Provider,
        client: ClientCredentials,
        form: Mapping[str, str],
        max_bytes: int,
    ) -> FormReply:
        data = dict(form)
        headers: dict[str, str] = {}
        method = provider.token_endpoint_auth
        if method is TokenEndpointAuth.CLIENT_SECRET_BASIC:
            headers["Authorization"] = _basic_auth(client)
        elif method is TokenEndpointAuth.CLIENT_SECRET_POST:
            data["client_id"] = client.client_id
            data["client_secret"] = client.client_secret or ""
        else:
            data["client_id"] = client.client_id
        return await self._transport.post_form(url, data, headers, max_bytes)


def _basic_auth(client: ClientCredentials) -> str:
    # RFC 7617: "Basic " and base64 of id:secret, as httpx's BasicAuth sends it.
    pair = f"{client.client_id}:{client.client_secret or ''}".encode()
    return f"Basic {base64.b64encode(pair).decode('ascii')}"


def _transport_failure(provider: Provider, error: TransportError) -> TokenFailure:
    logger.warning("Token endpoint of %s failed: %s", provider.slug, error.reason)
    return TokenFailure(
        kind=TokenErrorKind.TRANSIENT,
        status_code=0,
        error="timeout" if error.timed_out else "network_error",
        description=f"The token endpoint of {provider.slug} {error.reason}.",
    )
