"""A minimal OAuth 2.0 token endpoint on loopback for the worker benchmark.

Every `POST /token` gets HTTP 200 with a new token response (RFC 6749 section
5.1): random, unique access and refresh tokens, `token_type` Bearer, an
`expires_in` and a `scope`. The request body is read but not checked, so the
server does as little work per request as HTTP/1.1 allows and a benchmark
measures the client. Connections stay open (keep-alive) until the client
closes them or sends `Connection: close`.

Run `python -m bench.token_server`: it prints `TOKEN SERVER READY
127.0.0.1:PORT` once it listens, and on SIGTERM or SIGINT it prints the number
of requests served and its own CPU seconds, then exits.

`python -m bench.token_server --load REQUESTS` measures the server instead: it
starts one in a subprocess, sends REQUESTS requests over keep-alive
connections from this process, and prints the request rate and the server's
CPU time per request, read from /proc. The server runs one thread, so
`requests_per_cpu_second` is the rate one core can serve.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

HOST = "127.0.0.1"
READY_PREFIX = "TOKEN SERVER READY"
STOPPED_PREFIX = "TOKEN SERVER STOPPED"
TOKEN_PATH = b"/token"
DEFAULT_EXPIRES_IN = 3600
DEFAULT_SCOPE = "read trade"
# A longer request head closes the connection. Real token requests need a few
# hundred bytes.
MAX_HEAD_BYTES = 16 * 1024
# Seconds a stopping server waits for its connection handlers to return.
CLOSE_TIMEOUT = 5.0
# Seconds the load test waits for the server's ready line.
READY_TIMEOUT = 30.0


@dataclass(slots=True)
class Counters:
    """Requests served since the server started."""

    requests: int = 0


class TokenResponder:
    """HTTP responses of the token server, with new tokens in every one."""

    def __init__(self, expires_in: int, scope: str) -> None:
        self._expires_in = expires_in
        self._scope = scope
        # A counter makes tokens unique even if two random parts collided.
        self._serial = itertools.count(1)

    def token_response(self) -> bytes:
        serial = next(self._serial)
        body = json.dumps(
            {
                "access_token": f"at{serial:x}.{secrets.token_urlsafe(24)}",
                "token_type": "Bearer",
                "expires_in": self._expires_in,
                "refresh_token": f"rt{serial:x}.{secrets.token_urlsafe(24)}",
                "scope": self._scope,
            }
        ).encode()
        # RFC 6749 section 5.1 requires no-store on token responses.
        return _response(
            b"200 OK", body, b"application/json", b"Cache-Control: no-store\r\n"
        )

    @staticmethod
    def not_found() -> bytes:
        body = b'{"error": "not_found", "error_description": "POST /token only"}'
        return _response(b"404 Not Found", body, b"application/json", b"")


def _response(status: bytes, body: bytes, content_type: bytes, extra: bytes) -> bytes:
    return b"".join(
        (
            b"HTTP/1.1 ",
            status,
            b"\r\nContent-Type: ",
            content_type,
            b"\r\nContent-Length: ",
            str(len(body)).encode(),
            b"\r\n",
            extra,
            b"\r\n",
            body,
        )
    )


@dataclass(frozen=True, slots=True)
class RequestHead:
    """The parts of an HTTP/1.1 request head that the server uses."""

    method: bytes
    path: bytes
    content_length: int
    close: bool


def parse_head(head: bytes) -> RequestHead:
    """Parse a request head that ends with an empty line.

    Raises:
        ValueError: The request line or Content-Length is malformed.
    """
    lines = head.split(b"\r\n")
    method, path, version = lines[0].split(b" ", 2)
    content_length = 0
    close = version == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            content_length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    if content_length < 0:
        raise ValueError(f"Content-Length {content_length} is negative.")
    return RequestHead(method, path.split(b"?", 1)[0], content_length, close)


class TokenServer:
    """The asyncio streams server; `serve` runs until its stop event is set."""

    def __init__(self, responder: TokenResponder) -> None:
        self._responder = responder
        self.counters = Counters()
        self._open: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open[writer] = task
        try:
            await self._serve_connection(reader, writer)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ValueError,
        ):
            # A client that hangs up or sends garbage loses its connection only.
            pass
        finally:
            del self._open[writer]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def close_connections(self) -> None:
        """Close every client connection and wait for its handler to return.

        Handlers that end by themselves keep Python 3.11 from logging each
        cancelled handler as an unhandled exception at shutdown.
        """
        tasks = list(self._open.values())
        for writer in list(self._open):
            writer.close()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as error:
                if error.partial:
                    raise
                return  # The client closed an idle keep-alive connection.
            request = parse_head(head[:-4])
            if request.content_length:
                await reader.readexactly(request.content_length)

            if request.method == b"POST" and request.path == TOKEN_PATH:
                writer.write(self._responder.token_response())
            else:
                writer.write(self._responder.not_found())
            self.counters.requests += 1
            await writer.drain()
            if request.close:
                return


async def serve(port: int, expires_in: int, scope: str) -> Counters:
    """Listen on loopback, print the ready line, serve until SIGTERM or SIGINT."""
    server = TokenServer(TokenResponder(expires_in, scope))
    listener = await asyncio.start_server(
        server.handle, HOST, port, limit=MAX_HEAD_BYTES
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    bound_port = listener.sockets[0].getsockname()[1]
    print(f"{READY_PREFIX} {HOST}:{bound_port}", flush=True)
    async with listener:
        await stop.wait()
        listener.close()
        await server.close_connections()
    return server.counters


def run_server(port: int, expires_in: int, scope: str) -> None:
    counters = asyncio.run(serve(port, expires_in, scope))
    used = time.process_time()
    per_request = used / counters.requests * 1000 if counters.requests else 0.0
    print(
        f"{STOPPED_PREFIX} requests={counters.requests} cpu_seconds={used:.3f} "
        f"cpu_ms_per_request={per_request:.4f}",
        flush=True,
    )


# -- the load test -----------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU seconds of a live process, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5) are utime and stime, in clock ticks. The
    # split above starts at field 3, after the command name.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """A token server subprocess in its own process group."""

    def __init__(self, *options: str) -> None:
        command = [sys.executable, "-m", "bench.token_server", *options]
        self.process = subprocess.Popen(  # noqa: S603 -- our own interpreter
            command,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{TOKEN_PATH.decode()}"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Read the ready line and record the port.

        Raises:
            RuntimeError: The server exited or printed nothing for `timeout`
                seconds.
        """
        line = _read_line(self.process, timeout)
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(
                f"The token server did not print {READY_PREFIX!r} within "
                f"{timeout} s; it printed {line!r} (exit code "
                f"{self.process.returncode})."
            )
        self.port = int(line.rsplit(":", 1)[1])

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def stop(self, timeout: float = 10.0) -> str:
        """Stop the process group (SIGTERM, then SIGKILL); return its last output."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
        try:
            output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            output, _ = self.process.communicate(timeout=timeout)
        return output or ""


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    # A selector bounds the wait without a reader thread.
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline().strip()


async def _client(port: int, count: int) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    body = b"grant_type=refresh_token&refresh_token=rt-load-test"
    request = (
        b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Authorization: Basic YmVuY2g6c2VjcmV0\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = parse_content_length(head)
            await reader.readexactly(length)
    finally:
        writer.close()
        await writer.wait_closed()


def parse_content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("The response has no Content-Length.")


def load_test(requests: int, connections: int) -> dict[str, float]:
    """Serve `requests` requests over `connections` keep-alive connections."""
    server = ServerProcess("--port", "0")
    try:
        server.wait_ready()
        per_connection = max(1, requests // connections)
        sent = per_connection * connections
        cpu_before = server.cpu_seconds()
        started = time.perf_counter()

        async def drive() -> None:
            await asyncio.gather(
                *(_client(server.port, per_connection) for _ in range(connections))
            )

        asyncio.run(drive())
        wall = time.perf_counter() - started
        server_cpu = server.cpu_seconds() - cpu_before
    finally:
        server.stop()
    return {
        "requests": sent,
        "connections": connections,
        "wall_seconds": round(wall, 3),
        "requests_per_second": round(sent / wall, 1),
        "server_cpu_seconds": round(server_cpu, 3),
        "server_cpu_ms_per_request": round(server_cpu / sent * 1000, 4),
        "requests_per_cpu_second": round(sent / server_cpu, 1) if server_cpu else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.token_server", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks a free one."
    )
    parser.add_argument(
        "--expires-in",
        type=int,
        default=DEFAULT_EXPIRES_IN,
        help="expires_in of every token response, in seconds.",
    )
    parser.add_argument(
        "--scope", default=DEFAULT_SCOPE, help="Scope of every token response."
    )
    parser.add_argument(
        "--load",
        type=int,
        default=0,
        metavar="REQUESTS",
        help="Measure a server subprocess with this many requests, then exit.",
    )
    parser.add_argument(
        "--load-connections",
        type=int,
        default=20,
        help="Keep-alive connections the load test sends over.",
    )
    args = parser.parse_args(argv)

    if args.load:
        result = load_test(args.load, args.load_connections)
        print(json.dumps(result, indent=2))
        return
    run_server(args.port, args.expires_in, args.scope)


if __name__ == "__main__":
    main()
