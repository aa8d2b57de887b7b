"""Serve the sandbox on loopback with werkzeug's threaded server."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import TextIO
from urllib.parse import urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from linkvault.sandbox.server import create_app
from linkvault.sandbox.settings import SandboxSettings, loopback_url

logger = logging.getLogger(__name__)

#: Start of the line printed on stdout once the server accepts connections.
READY_PREFIX = "SANDBOX READY"

# Interval, in seconds, at which the serving loop checks for a stop request.
_POLL_INTERVAL = 0.1


class QuietRequestHandler(WSGIRequestHandler):
    """Request handler that logs no request line or query string.

    Werkzeug's access log prints each request line, and the request line of a
    redirect callback or a token request can carry an authorization code.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log the method, path and status at DEBUG, without the query string."""
        path = urlsplit(getattr(self, "path", "")).path
        logger.debug("%s %s -> %s", getattr(self, "command", "-"), path, code)

    def log_error(self, format: str, *args: object) -> None:
        """Log that a request failed, without werkzeug's arguments.

        The arguments can hold the raw request line.
        """
        logger.warning("The HTTP server rejected a malformed request")


class SandboxServer:
    """A sandbox bound to its port, served from a background thread."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self._server: BaseWSGIServer = make_server(
            settings.host,
            settings.port,
            create_app(settings),
            threaded=True,
            request_handler=QuietRequestHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name="sandbox-http",
            daemon=True,
        )
        self._stop_lock = threading.Lock()
        self._stopping = False

    @property
    def url(self) -> str:
        """Base URL with the bound port, which differs from a setting of 0."""
        return loopback_url(self.settings.host, self._server.port)

    def start(self) -> None:
        """Start accepting connections in the background thread."""
        self._thread.start()
        logger.info(
            "Sandbox listening on %s with %d clients",
            self.url,
            len(self.settings.clients),
        )

    def wait(self) -> None:
        """Block until the server has stopped."""
        self._thread.join()

    def stop(self) -> None:
        """Stop serving and close the socket; requests in flight are abandoned.

        A second call, such as from a repeated signal, does nothing.
        """
        with self._stop_lock:
            if self._stopping:
                return
            self._stopping = True

        self._server.shutdown()
        self._thread.join()
        logger.info("Sandbox stopped")

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(settings: SandboxSettings, *, ready_stream: TextIO | None = None) -> None:
    """Run the sandbox until SIGTERM or SIGINT, announcing it on `ready_stream`.

    Once the port is bound, prints `SANDBOX READY <url>` on `ready_stream`
    (stdout by default) and flushes, so a parent process can read the port.
    Must run in the main thread, which owns signal handlers.
    """
    server = SandboxServer(settings)
    _stop_on_signals(server)
    server.start()

    stream = ready_stream or sys.stdout
    print(f"{READY_PREFIX} {server.url}", file=stream, flush=True)
    server.wait()


def _stop_on_signals(server: SandboxServer) -> None:
    def request_stop(signum: int, frame: FrameType | None) -> None:
        # stop() blocks until the serving loop exits, so it must not run inside
        # the handler, which interrupts the main thread.
        name = signal.Signals(signum).name
        threading.Thread(
            target=_stop_after_signal, args=(server, name), name="sandbox-stop"
        ).start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def _stop_after_signal(server: SandboxServer, signal_name: str) -> None:
    logger.info("Sandbox received %s, stopping", signal_name)
    server.stop()
