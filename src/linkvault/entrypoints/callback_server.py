"""A one-shot loopback HTTP server that receives the OAuth 2.0 redirect.

Native apps receive the authorization response on a loopback redirect URI
with a port chosen at run time (RFC 8252 section 7.3). The server binds
127.0.0.1 only, serves the first request to its path, and hands the query
parameters to the waiting coroutine. Its request log is silenced because the
query string carries the authorization code.
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_PAGE = (
    "<!doctype html><title>linkvault</title><p>{message} You can close this window.</p>"
)


class CallbackServer:
    """Listens on `http://127.0.0.1:PORT/callback` until one callback arrives.

    Use as `async with CallbackServer() as server:` then `server.redirect_uri`
    and `await server.wait()`.
    """

    def __init__(self, port: int = 0, path: str = "/callback") -> None:
        self._port = port
        self._path = path
        self._result: asyncio.Future[dict[str, str]] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def redirect_uri(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_port}{self._path}"

    async def __aenter__(self) -> CallbackServer:
        loop = asyncio.get_running_loop()
        self._result = loop.create_future()
        handler = _handler_for(self._path, loop, self._result)
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="linkvault-callback", daemon=True
        )
        self._thread.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.shutdown)
            self._server.server_close()

    async def wait(self) -> dict[str, str]:
        """Return the callback's query parameters; bound it with asyncio.timeout."""
        assert self._result is not None, "start the server first"
        return await asyncio.shield(self._result)


def _handler_for(
    path: str, loop: asyncio.AbstractEventLoop, result: asyncio.Future[dict[str, str]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != path:
                self._reply(404, "Unknown path.")
                return
            query = dict(parse_qsl(parts.query))
            message = (
                "Authorisation failed."
                if "error" in query
                else "Authorisation received."
            )
            self._reply(200, message)
            loop.call_soon_threadsafe(_resolve, result, query)

        def _reply(self, status: int, message: str) -> None:
            body = _PAGE.format(message=message).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # The default log prints the request line, code included.
            return

    return Handler


def _resolve(result: asyncio.Future[dict[str, str]], query: dict[str, str]) -> None:
    if not result.done():
        result.set_result(query)
