"""The token endpoint port on httpx: code exchange, refresh and revocation.

Responses are judged by `parse_token_response`, which reads the body instead of
trusting the status code. Transport failures (timeouts, refused connections)
become transient `TokenFailure`s, so callers handle one result type. No token,
code, verifier or client secret reaches a log line or an error message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

import httpx

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

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class HttpTokenEndpoint:
    """Token endpoint calls over one shared `httpx.AsyncClient`.

    Args:
        timeout: Per-request timeout; the refresh lease must outlast it.
        client: An existing client to use (for tests or custom transports).
    """

    def __init__(
        self,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._client = client or httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

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
            response = await self._post(provider.revocation_url, provider, client, form)
        except httpx.HTTPError as error:
            reason = _transport_reason(error)
            logger.warning("Revocation at %s failed: %s", provider.slug, reason)
            return RevocationResult(False, reason)

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
            response, body = await self._post_capped(
                provider.token_url, provider, client, form, settings.max_body_bytes
            )
        except httpx.HTTPError as error:
            return _transport_failure(provider, error)

        return parse_token_response(
            response.status_code,
            response.headers.get("content-type"),
            body,
            now=now,
            previous=previous,
            settings=settings,
            authorized_at=authorized_at,
            retry_after=response.headers.get("retry-after"),
            redact=[value for value in redact if value],
        )

    async def _post_capped(
        self,
        url: str,
        provider: Provider,
        client: ClientCredentials,
        form: dict[str, str],
        max_bytes: int,
    ) -> tuple[httpx.Response, bytes]:
        # Reading stops one byte past the cap: the parser then gets an
        # oversized body and reports it, without holding all of it in memory.
        request = self._build(url, provider, client, form)
        response = await self._client.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    break
        finally:
            await response.aclose()
        return response, bytes(body)

    async def _post(
        self,
        url: str,
        provider: Provider,
        client: ClientCredentials,
        form: dict[str, str],
    ) -> httpx.Response:
        return await self._client.send(self._build(url, provider, client, form))

    def _build(
        self,
        url: str,
        provider: Provider,
        client: ClientCredentials,
        form: Mapping[str, str],
    ) -> httpx.Request:
        data = dict(form)
        auth: httpx.BasicAuth | None = None
        method = provider.token_endpoint_auth
        if method is TokenEndpointAuth.CLIENT_SECRET_BASIC:
            auth = httpx.BasicAuth(client.client_id, client.client_secret or "")
        elif method is TokenEndpointAuth.CLIENT_SECRET_POST:
            data["client_id"] = client.client_id
            data["client_secret"] = client.client_secret or ""
        else:
            data["client_id"] = client.client_id

        request = self._client.build_request("POST", url, data=data)
        if auth is not None:
            request = next(auth.auth_flow(request))
        return request


def _transport_reason(error: httpx.HTTPError) -> str:
    # httpx messages name the URL at most, never the form body.
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    return f"{type(error).__name__}: {error}"


def _transport_failure(provider: Provider, error: httpx.HTTPError) -> TokenFailure:
    reason = _transport_reason(error)
    logger.warning("Token endpoint of %s failed: %s", provider.slug, reason)
    code = "timeout" if isinstance(error, httpx.TimeoutException) else "network_error"
    return TokenFailure(
        kind=TokenErrorKind.TRANSIENT,
        status_code=0,
        error=code,
        description=f"The token endpoint of {provider.slug} {reason}.",
    )
