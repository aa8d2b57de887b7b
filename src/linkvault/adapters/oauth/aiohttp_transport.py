"""Token request forms over aiohttp, the default HTTP client of token requests."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from linkvault.adapters.oauth.transports import (
    CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    REQUEST_HEADERS,
    FormReply,
    TransportError,
    transport_reason,
)


class AiohttpTransport:
    """Form posts over one `aiohttp.ClientSession`, opened on first use.

    The session is created lazily because aiohttp binds it to the running
    event loop. Cookies are ignored and redirects are not followed, because
    a token endpoint that redirects or sets cookies is misconfigured.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=timeout, connect=min(timeout, CONNECT_TIMEOUT)
        )
        self._session: aiohttp.ClientSession | None = None

    async def post_form(
        self,
        url: str,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        max_bytes: int,
    ) -> FormReply:
        try:
            async with self._client().post(
                url, data=dict(form), headers=dict(headers), allow_redirects=False
            ) as response:
                body = await _read_capped(response.content, max_bytes)
                return FormReply(
                    response.status,
                    response.headers.get("Content-Type"),
                    response.headers.get("Retry-After"),
                    body,
                )
        except TimeoutError as error:
            raise TransportError(transport_reason(error), timed_out=True) from error
        except aiohttp.ClientError as error:
            raise TransportError(transport_reason(error), timed_out=False) from error

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers=REQUEST_HEADERS,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session


async def _read_capped(stream: aiohttp.StreamReader, max_bytes: int) -> bytes:
    # Reading stops one byte past the cap: the parser then gets an oversized
    # body and reports it, without holding all of it in memory.
    body = bytearray()
    while len(body) <= max_bytes:
        chunk = await stream.read(max_bytes + 1 - len(body))
        if not chunk:
            break
        body.extend(chunk)
    return bytes(body)
