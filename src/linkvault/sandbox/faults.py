"""Faults that the sandbox serves on token requests, queued by the admin API.

Each fault replaces the next `count` token requests (optionally only those of
one grant type) with a broken response. A faulted request never reaches the
grants, so it consumes no authorization code or refresh token.

`delay` is the exception: the request runs normally, but it pauses for
`delay_seconds` after validation and before its code or refresh token is
redeemed. A client that times out meanwhile loses the rotated refresh token, as
it would with a real provider. Concurrent requests with the same refresh token
are then all validated before any of them redeems it, which is the race that
the store's lock must settle.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any, Literal

from flask import Response, g
from pydantic import BaseModel, ConfigDict, Field

FaultMode = Literal[
    "status_500",
    "status_429",
    "delay",
    "malformed_body",
    "html_body",
    "no_access_token",
    "invalid_client",
    "invalid_grant",
]

_DEFAULT_STATUS: dict[str, int] = {
    "status_500": 500,
    "status_429": 429,
    "malformed_body": 200,
    "html_body": 200,
    "no_access_token": 200,
    "invalid_client": 401,
    "invalid_grant": 400,
}

_ERROR_BODIES: dict[str, dict[str, str]] = {
    "status_500": {
        "error": "server_error",
        "error_description": "The sandbox served an injected server error.",
    },
    "status_429": {
        "error": "temporarily_unavailable",
        "error_description": "The sandbox served an injected rate limit.",
    },
    "invalid_client": {
        "error": "invalid_client",
        "error_description": "The sandbox served an injected client error.",
    },
    "invalid_grant": {
        "error": "invalid_grant",
        "error_description": "The sandbox served an injected grant error.",
    },
}

# Attribute of `flask.g` that carries a scheduled delay, in seconds.
_DELAY_KEY = "sandbox_fault_delay"

# A JSON document cut off in the middle of a string.
_MALFORMED_JSON = '{"access_token": "cut-off'
_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Maintenance</title></head>"
    "<body><h1>The service is down for maintenance</h1></body></html>"
)


class FaultSpec(BaseModel):
    """A fault as posted to `POST /_sandbox/faults`.

    Attributes:
        mode: What the broken response looks like.
        count: How many matching token requests receive the fault.
        grant_type: Only token requests of this grant type match; None matches all.
        retry_after: Seconds to send in a `Retry-After` header, or None for none.
        delay_seconds: Seconds that `delay` pauses a request before it redeems
            its code or refresh token.
        status: HTTP status that replaces the mode's default status.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: FaultMode
    count: int = Field(default=1, ge=1)
    grant_type: Literal["authorization_code", "refresh_token"] | None = None
    retry_after: int | None = Field(default=None, ge=0)
    delay_seconds: float = Field(default=1.0, ge=0, le=300)
    status: int | None = Field(default=None, ge=200, le=599)

    def matches(self, grant_type: str | None) -> bool:
        """Return whether a token request of `grant_type` receives this fault."""
        return self.grant_type is None or self.grant_type == grant_type


class FaultQueue:
    """Pending faults in the order they were posted, shared by request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[tuple[FaultSpec, int]] = deque()

    def add(self, fault: FaultSpec) -> None:
        """Queue a fault behind those already pending."""
        with self._lock:
            self._pending.append((fault, fault.count))

    def clear(self) -> int:
        """Drop every pending fault and return how many were pending."""
        with self._lock:
            dropped = len(self._pending)
            self._pending.clear()
            return dropped

    def pending(self) -> list[dict[str, Any]]:
        """Describe the pending faults, each with the requests it has left."""
        with self._lock:
            return [
                {**fault.model_dump(), "remaining": remaining}
                for fault, remaining in self._pending
            ]

    def take(self, grant_type: str | None) -> FaultSpec | None:
        """Use up one request of the first pending fault that matches `grant_type`."""
        with self._lock:
            for index, (fault, remaining) in enumerate(self._pending):
                if not fault.matches(grant_type):
                    continue
                if remaining > 1:
                    self._pending[index] = (fault, remaining - 1)
                else:
                    del self._pending[index]
                return fault
            return None


def render_fault(fault: FaultSpec) -> Response | None:
    """Build the broken token response, or schedule a `delay` and return None."""
    if fault.mode == "delay":
        setattr(g, _DELAY_KEY, fault.delay_seconds)
        return None

    response = _fault_body(fault.mode)
    response.status_code = fault.status or _DEFAULT_STATUS[fault.mode]
    response.headers["Cache-Control"] = "no-store"
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    if fault.mode == "invalid_client" and response.status_code == 401:
        # RFC 6749 section 5.2: a 401 carries the scheme the client should use.
        response.headers["WWW-Authenticate"] = 'Basic realm="sandbox"'

    return response


def wait_scheduled_delay() -> None:
    """Sleep for the `delay` fault of the current request, at most once.

    The grants call this between validation and redemption; the token endpoint
    calls it again after the response is built, for a request that failed
    validation and so never reached a grant.
    """
    seconds = g.pop(_DELAY_KEY, 0.0)
    if seconds:
        time.sleep(seconds)


def _fault_body(mode: FaultMode) -> Response:
    if mode == "malformed_body":
        return Response(_MALFORMED_JSON, mimetype="application/json")
    if mode == "html_body":
        return Response(_HTML_PAGE, mimetype="text/html")
    if mode == "no_access_token":
        body = {"token_type": "Bearer", "expires_in": 3600, "scope": "read"}
        return Response(json.dumps(body), mimetype="application/json")

    return Response(json.dumps(_ERROR_BODIES[mode]), mimetype="application/json")
