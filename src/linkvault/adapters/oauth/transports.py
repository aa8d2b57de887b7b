"""HTTP clients that post a token request form and read a capped response body.

`HttpTokenEndpoint` speaks OAuth 2.0 and leaves the HTTP exchange to one of
these. aiohttp is the default: against a local token endpoint it used about
0.37 ms of CPU per request where httpx used 1.5 ms (`bench/http_clients.py`,
BENCHMARKS.md), and a refresh worker makes one request per refresh. httpx
remains for callers who prefer it or bring an `httpx.AsyncClient` of their
own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx

HttpClientName = Literal["aiohttp", "httpx"]

# Seconds for a whole request, and for opening its connection.
DEFAULT_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
# Headers of every request a transport sends.
REQUEST_HEADERS = {"Accept": "application/json"}


@dataclass(frozen=True, slots=True)
class FormReply:
    """The parts of an HTTP response that token responses are judged by."""

    status_code: int
    content_type: str | None
    retry_after: str | None
    # At most `max_bytes + 1` bytes, so an oversized body can be reported.
    body: bytes


class TransportError(Exception):
    """The request got no HTTP response: a timeout, a refused connection."""

    def __init__(self, reason: str, *, timed_out: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


class FormTransport(Protocol):
    """Posts `application/x-www-form-urlencoded` requests."""

    async def post_form(
        self,
        url: str,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        max_bytes: int,
    ) -> FormReply:
        """Post `form` and read at most `max_bytes + 1` bytes of the body.

        Raises:
            TransportError: No response arrived. Its reason names no form value.
        """
        ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    """Form posts over one `httpx.AsyncClient`.

    Args:
        client: An existing client to use (for tests or custom transports);
            by default one without redirects and with `timeout`.
    """

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            follow_redirects=False,
            headers=REQUEST_HEADERS,
        )

    async def post_form(
        self,
        url: str,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        max_bytes: int,
    ) -> FormReply:
        request = self._client.build_request(
            "POST", url, data=dict(form), headers=dict(headers)
        )
        try:
            response = await self._client.send(request, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        break
            finally:
                await response.aclose()
        except httpx.TimeoutException as error:
            raise TransportError(transport_reason(error), timed_out=True) from error
        except httpx.HTTPError as error:
            raise TransportError(transport_reason(error), timed_out=False) from error
        return FormReply(
            response.status_code,
            response.headers.get("content-type"),
            response.headers.get("retry-after"),
            bytes(body),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def make_transport(name: HttpClientName, timeout: float) -> FormTransport:
    """Return the transport called `name` ("aiohttp" or "httpx")."""
    if name == "httpx":
        return HttpxTransport(timeout)
    # Imported here: aiohttp takes a noticeable part of a second to import,
    # which commands that never call a provider should not pay.
    from linkvault.adapters.oauth.aiohttp_transport import AiohttpTransport

    return AiohttpTransport(timeout)


def transport_reason(error: BaseException) -> str:
    """Return a one-line reason for a failed request, without form values."""
    # Client errors name the URL at most, never the form body.
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    return f"{type(error).__name__}: {error}"
