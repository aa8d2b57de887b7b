"""End-to-end tests of the sandbox authorization server, run as a subprocess."""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sandbox_process import SandboxHandle, running_sandbox

from linkvault.sandbox.cli import build_parser, settings_from_args, settings_to_argv
from linkvault.sandbox.settings import (
    DEFAULT_CONFIDENTIAL_CLIENT_ID,
    DEFAULT_CONFIDENTIAL_CLIENT_SECRET,
    DEFAULT_PUBLIC_CLIENT_ID,
    SandboxClient,
    SandboxSettings,
)

pytestmark = pytest.mark.e2e

REDIRECT_URI = "http://127.0.0.1:8765/callback"
REGISTERED_REDIRECT_URI = "https://app.example.test/oauth/callback"
ADMIN_TOKEN = "admin-token-for-tests"
CUSTOM_CLIENT = SandboxClient.parse("custom-app:custom-secret")


@dataclass(frozen=True)
class ClientCredentials:
    """How a test client authenticates at the token and revocation endpoints."""

    client_id: str
    secret: str | None = None
    method: str = "none"

    def apply(self, data: dict[str, str]) -> dict[str, Any]:
        """Return request options that add this client's authentication to `data`."""
        form = dict(data)
        if self.method == "client_secret_basic":
            assert self.secret is not None
            return {"data": form, "auth": (self.client_id, self.secret)}

        form["client_id"] = self.client_id
        if self.method == "client_secret_post":
            assert self.secret is not None
            form["client_secret"] = self.secret
        return {"data": form}


PUBLIC = ClientCredentials(DEFAULT_PUBLIC_CLIENT_ID)
BASIC = ClientCredentials(
    DEFAULT_CONFIDENTIAL_CLIENT_ID,
    DEFAULT_CONFIDENTIAL_CLIENT_SECRET,
    "client_secret_basic",
)
POST = ClientCredentials(
    DEFAULT_CONFIDENTIAL_CLIENT_ID,
    DEFAULT_CONFIDENTIAL_CLIENT_SECRET,
    "client_secret_post",
)


@dataclass(frozen=True)
class Pkce:
    """A PKCE code verifier and its S256 code challenge."""

    verifier: str
    challenge: str

    @classmethod
    def create(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return cls(verifier, challenge)


def authorize(
    client: httpx.Client,
    *,
    client_id: str = DEFAULT_PUBLIC_CLIENT_ID,
    user: str | None = "alice",
    pkce: Pkce | None = None,
    **extra: str,
) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "state": "state-123",
        **extra,
    }
    if user is not None:
        params["login_hint"] = user
    if pkce is not None:
        params["code_challenge"] = pkce.challenge
        params["code_challenge_method"] = "S256"
    return client.get("/authorize", params=params)


def callback_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {name: values[0] for name, values in query.items()}


def exchange_code(
    client: httpx.Client,
    credentials: ClientCredentials,
    code: str,
    *,
    verifier: str | None = None,
    redirect_uri: str = REDIRECT_URI,
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    return client.post("/token", **credentials.apply(data))


def refresh(
    client: httpx.Client, refresh_token: str, credentials: ClientCredentials = PUBLIC
) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return client.post("/token", **credentials.apply(data))


def revoke(
    client: httpx.Client, token: str, credentials: ClientCredentials = PUBLIC
) -> httpx.Response:
    return client.post("/revoke", **credentials.apply({"token": token}))


def connect(client: httpx.Client, user: str = "alice") -> dict[str, Any]:
    """Run the public client's authorization code flow with PKCE."""
    pkce = Pkce.create()
    code = callback_params(authorize(client, user=user, pkce=pkce))["code"]
    response = exchange_code(client, PUBLIC, code, verifier=pkce.verifier)
    assert response.status_code == 200, response.text
    return dict(response.json())


def userinfo_status(client: httpx.Client, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return client.get("/userinfo", headers=headers).status_code


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def run_concurrently(
    sandbox: SandboxHandle,
    contenders: int,
    send: Callable[[httpx.Client], httpx.Response],
) -> list[int]:
    """Send one request per thread, released together; return the statuses.

    Pair it with a `delay` fault, which pauses each request between validation
    and redemption, so that all of them see the code or token unused.
    """
    barrier = threading.Barrier(contenders)
    statuses: list[int] = []

    def run() -> None:
        with sandbox.client() as client:
            barrier.wait()
            statuses.append(send(client).status_code)

    threads = [threading.Thread(target=run) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.fixture
def http(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with sandbox.client() as client:
        yield client


@pytest.fixture(scope="module")
def custom_sandbox_process() -> Iterator[SandboxHandle]:
    """A sandbox with non-default settings, shared by the tests that need them."""
    with running_sandbox(
        clients=(CUSTOM_CLIENT, SandboxClient(client_id=DEFAULT_PUBLIC_CLIENT_ID)),
        token_endpoint_auth_methods=("client_secret_post", "none"),
        redirect_uris=(REGISTERED_REDIRECT_URI,),
        denied_users=("mallory",),
        refresh_token_lifetime=1000,
        refresh_token_clock="fixed",
        send_refresh_token_expires_in=True,
        admin_token=ADMIN_TOKEN,
    ) as handle:
        yield handle


@pytest.fixture
def custom_sandbox(custom_sandbox_process: SandboxHandle) -> SandboxHandle:
    custom_sandbox_process.reset()
    return custom_sandbox_process


@pytest.fixture
def custom_http(custom_sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with custom_sandbox.client() as client:
        yield client


# Authorization code flow


def test_public_client_pkce_flow(http: httpx.Client) -> None:
    pkce = Pkce.create()
    params = callback_params(authorize(http, user="alice", pkce=pkce))
    response = exchange_code(http, PUBLIC, params["code"], verifier=pkce.verifier)
    token = response.json()

    assert params["state"] == "state-123"
    assert response.status_code == 200
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["scope"] == "read"
    assert token["refresh_token"]
    assert "refresh_token_expires_in" not in token
    assert response.headers["cache-control"] == "no-store"
    userinfo = http.get(
        "/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert userinfo.json()["sub"] == "alice"


@pytest.mark.parametrize("credentials", [BASIC, POST], ids=["basic", "post"])
def test_confidential_client_flow(
    http: httpx.Client, credentials: ClientCredentials
) -> None:
    response = authorize(http, client_id=credentials.client_id, user="bob")
    code = callback_params(response)["code"]

    token = exchange_code(http, credentials, code).json()
    rotated = refresh(http, token["refresh_token"], credentials)

    assert token["token_type"] == "Bearer"
    assert userinfo_status(http, token["access_token"]) == 200
    assert rotated.status_code == 200


def test_confidential_client_accepts_pkce(http: httpx.Client) -> None:
    pkce = Pkce.create()
    response = authorize(http, client_id=BASIC.client_id, pkce=pkce)
    code = callback_params(response)["code"]

    exchanged = exchange_code(http, BASIC, code, verifier=pkce.verifier)

    assert exchanged.status_code == 200


def test_public_client_requires_pkce(http: httpx.Client) -> None:
    params = callback_params(authorize(http, pkce=None))

    assert params["error"] == "invalid_request"
    assert "code_challenge" in params["error_description"]
    assert "code" not in params


def test_plain_code_challenge_rejected(http: httpx.Client) -> None:
    verifier = secrets.token_urlsafe(48)
    response = authorize(http, code_challenge=verifier, code_challenge_method="plain")

    assert callback_params(response)["error"] == "invalid_request"


def test_wrong_verifier_rejected(http: httpx.Client) -> None:
    pkce = Pkce.create()
    code = callback_params(authorize(http, pkce=pkce))["code"]

    response = exchange_code(http, PUBLIC, code, verifier=Pkce.create().verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_missing_verifier_rejected(http: httpx.Client) -> None:
    code = callback_params(authorize(http, pkce=Pkce.create()))["code"]

    response = exchange_code(http, PUBLIC, code, verifier=None)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_code_reuse_rejected(sandbox: SandboxHandle, http: httpx.Client) -> None:
    pkce = Pkce.create()
    code = callback_params(authorize(http, pkce=pkce))["code"]
    first = exchange_code(http, PUBLIC, code, verifier=pkce.verifier).json()

    second = exchange_code(http, PUBLIC, code, verifier=pkce.verifier)

    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert sandbox.stats()["code_reuse_detections"] == 1
    assert userinfo_status(http, first["access_token"]) == 401


def test_concurrent_code_exchange_one_wins(sandbox: SandboxHandle) -> None:
    contenders = 4
    with sandbox.client() as client:
        pkce = Pkce.create()
        code = callback_params(authorize(client, pkce=pkce))["code"]
    sandbox.add_fault(mode="delay", delay_seconds=0.2, count=contenders)

    statuses = run_concurrently(
        sandbox,
        contenders,
        lambda client: exchange_code(client, PUBLIC, code, verifier=pkce.verifier),
    )

    assert statuses.count(200) == 1
    assert statuses.count(400) == contenders - 1
    assert sandbox.stats()["code_reuse_detections"] == contenders - 1


def test_expired_code_rejected(sandbox: SandboxHandle, http: httpx.Client) -> None:
    pkce = Pkce.create()
    code = callback_params(authorize(http, pkce=pkce))["code"]
    sandbox.advance_clock(61)

    response = exchange_code(http, PUBLIC, code, verifier=pkce.verifier)

    assert response.status_code == 400
    assert "expired" in response.json()["error_description"]


def test_code_bound_to_redirect_uri(http: httpx.Client) -> None:
    pkce = Pkce.create()
    code = callback_params(authorize(http, pkce=pkce))["code"]

    response = exchange_code(
        http,
        PUBLIC,
        code,
        verifier=pkce.verifier,
        redirect_uri="http://127.0.0.1:9999/other",
    )

    assert response.json()["error"] == "invalid_grant"


def test_missing_login_hint_rejected(http: httpx.Client) -> None:
    response = authorize(http, user=None, pkce=Pkce.create())

    assert response.status_code == 400
    assert "login_hint" in response.json()["error_description"]


def test_unknown_client_rejected(http: httpx.Client) -> None:
    response = authorize(http, client_id="nobody", pkce=Pkce.create())

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def test_deny_parameter_denies_access(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    response = authorize(http, pkce=Pkce.create(), sandbox_deny="1")
    params = callback_params(response)

    assert params["error"] == "access_denied"
    assert params["state"] == "state-123"
    assert "code" not in params
    assert sandbox.stats()["access_denied"] == 1


def test_denied_user_denied_access(custom_http: httpx.Client) -> None:
    params = callback_params(authorize(custom_http, user="mallory", pkce=Pkce.create()))

    assert params["error"] == "access_denied"


# Redirect URIs


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:1/callback",
        "http://127.0.0.1:54321/deep/path",
        "http://localhost:8080/callback",
        "http://[::1]:40000/callback",
    ],
)
def test_loopback_redirect_any_port(http: httpx.Client, redirect_uri: str) -> None:
    response = authorize(http, pkce=Pkce.create(), redirect_uri=redirect_uri)

    assert response.status_code == 302
    assert response.headers["location"].startswith(redirect_uri + "?code=")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://attacker.example.test/callback",
        "http://10.0.0.1:8080/callback",
        "https://127.0.0.1:8080/callback",
        "http://127.0.0.1:8080/callback#fragment",
    ],
)
def test_unregistered_redirect_rejected(http: httpx.Client, redirect_uri: str) -> None:
    response = authorize(http, pkce=Pkce.create(), redirect_uri=redirect_uri)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.json()["error"] == "invalid_request"


def test_registered_redirect_accepted(custom_http: httpx.Client) -> None:
    response = authorize(
        custom_http, pkce=Pkce.create(), redirect_uri=REGISTERED_REDIRECT_URI
    )

    assert response.status_code == 302
    assert response.headers["location"].startswith(REGISTERED_REDIRECT_URI)


# Client authentication


def test_wrong_client_secret_rejected(http: httpx.Client) -> None:
    code = callback_params(authorize(http, client_id=BASIC.client_id))["code"]
    wrong = ClientCredentials(BASIC.client_id, "not-the-secret", BASIC.method)

    response = exchange_code(http, wrong, code)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_confidential_client_needs_secret(http: httpx.Client) -> None:
    code = callback_params(authorize(http, client_id=BASIC.client_id))["code"]
    without_secret = ClientCredentials(BASIC.client_id)

    response = exchange_code(http, without_secret, code)

    assert response.json()["error"] == "invalid_client"


def test_disallowed_auth_method_rejected(custom_http: httpx.Client) -> None:
    client_id = CUSTOM_CLIENT.client_id
    code = callback_params(authorize(custom_http, client_id=client_id))["code"]
    basic = ClientCredentials(client_id, "custom-secret", "client_secret_basic")
    post = ClientCredentials(client_id, "custom-secret", "client_secret_post")

    rejected = exchange_code(custom_http, basic, code)
    accepted = exchange_code(custom_http, post, code)

    assert rejected.json()["error"] == "invalid_client"
    assert accepted.status_code == 200


# Refresh tokens


def test_refresh_rotates_tokens(sandbox: SandboxHandle, http: httpx.Client) -> None:
    first = connect(http)

    response = refresh(http, first["refresh_token"])
    second = response.json()

    assert response.status_code == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "read"
    assert userinfo_status(http, second["access_token"]) == 200
    assert sandbox.stats()["refreshes"] == 1


def test_refresh_reuse_revokes_grant(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    first = connect(http)
    second = refresh(http, first["refresh_token"]).json()

    replay = refresh(http, first["refresh_token"])

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert sandbox.stats()["reuse_detections"] == 1
    assert userinfo_status(http, second["access_token"]) == 401
    assert refresh(http, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert sandbox.grants("alice")[0]["active"] is False


def test_concurrent_refresh_one_wins(sandbox: SandboxHandle) -> None:
    contenders = 8
    with sandbox.client() as client:
        refresh_token = connect(client)["refresh_token"]
    sandbox.add_fault(mode="delay", delay_seconds=0.2, count=contenders)

    statuses = run_concurrently(
        sandbox, contenders, lambda client: refresh(client, refresh_token)
    )

    assert statuses.count(200) == 1
    assert statuses.count(400) == contenders - 1
    assert sandbox.stats()["refreshes"] == 1
    assert sandbox.stats()["reuse_detections"] == contenders - 1


def test_expired_refresh_token_rejected(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    token = connect(http)
    sandbox.advance_clock(sandbox.settings.refresh_token_lifetime or 0)

    response = refresh(http, token["refresh_token"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "expired" in response.json()["error_description"]
    assert sandbox.stats()["reuse_detections"] == 0


def test_access_token_expires(sandbox: SandboxHandle, http: httpx.Client) -> None:
    token = connect(http)
    sandbox.advance_clock(token["expires_in"])

    assert userinfo_status(http, token["access_token"]) == 401


def test_fixed_refresh_clock_counts_down(
    custom_sandbox: SandboxHandle, custom_http: httpx.Client
) -> None:
    first = connect(custom_http)
    custom_sandbox.advance_clock(400)

    second = refresh(custom_http, first["refresh_token"]).json()

    assert first["refresh_token_expires_in"] == 1000
    assert second["refresh_token_expires_in"] <= 600
    assert second["refresh_token_expires_in"] >= 590


# Revocation


def test_revoke_refresh_token(sandbox: SandboxHandle, http: httpx.Client) -> None:
    token = connect(http)

    response = revoke(http, token["refresh_token"])

    assert response.status_code == 200
    assert userinfo_status(http, token["access_token"]) == 401
    assert refresh(http, token["refresh_token"]).json()["error"] == "invalid_grant"
    assert sandbox.stats()["revocations"] == 1
    assert sandbox.stats()["reuse_detections"] == 0


def test_revoke_access_token_ends_grant(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    token = connect(http)

    response = http.post(
        "/revoke",
        **PUBLIC.apply(
            {"token": token["access_token"], "token_type_hint": "access_token"}
        ),
    )

    assert response.status_code == 200
    assert refresh(http, token["refresh_token"]).json()["error"] == "invalid_grant"
    assert sandbox.stats()["revocations"] == 1


def test_revoke_unknown_token_ok(sandbox: SandboxHandle, http: httpx.Client) -> None:
    response = revoke(http, "never-issued")

    assert response.status_code == 200
    assert sandbox.stats()["revocations"] == 0


def test_revoke_user_ends_grants(sandbox: SandboxHandle, http: httpx.Client) -> None:
    first = connect(http, user="carol")
    second = connect(http, user="carol")
    other = connect(http, user="dave")

    revoked = sandbox.revoke_user("carol")

    assert revoked == 2
    assert refresh(http, first["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(http, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(http, other["refresh_token"]).status_code == 200


# Admin API


def test_grants_report_current_hash(sandbox: SandboxHandle, http: httpx.Client) -> None:
    first = connect(http, user="erin")
    before = sandbox.grants("erin")
    second = refresh(http, first["refresh_token"]).json()

    after = sandbox.grants("erin")

    assert len(after) == 1
    assert before[0]["refresh_token_sha256"] == sha256_hex(first["refresh_token"])
    assert after[0]["refresh_token_sha256"] == sha256_hex(second["refresh_token"])
    assert after[0]["refreshes"] == 1
    assert first["refresh_token"] not in str(after)
    assert sandbox.grants("nobody") == []


def test_stats_count_flow(sandbox: SandboxHandle, http: httpx.Client) -> None:
    token = connect(http)
    refreshed = refresh(http, token["refresh_token"]).json()
    revoke(http, refreshed["refresh_token"])
    authorize(http, pkce=Pkce.create(), sandbox_deny="1")

    stats = sandbox.stats()

    assert stats["authorizations"] == 1
    assert stats["access_denied"] == 1
    assert stats["tokens_issued"] == 2
    assert stats["refreshes"] == 1
    assert stats["revocations"] == 1
    assert stats["grants_revoked"] == 1
    assert stats["active_grants"] == 0
    assert stats["faults_served"] == 0


def test_admin_requires_token(custom_sandbox: SandboxHandle) -> None:
    with custom_sandbox.client() as client:
        missing = client.get("/_sandbox/stats")
        wrong = client.get(
            "/_sandbox/stats", headers={"X-Sandbox-Admin-Token": "wrong"}
        )

    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert custom_sandbox.admin("GET", "stats").status_code == 200


def test_metadata_lists_endpoints(sandbox: SandboxHandle, http: httpx.Client) -> None:
    metadata = http.get("/.well-known/oauth-authorization-server").json()

    assert metadata["token_endpoint"] == f"{sandbox.url}/token"
    assert metadata["code_challenge_methods_supported"] == ["S256"]


# Faults

FAULT_CASES = [
    ("status_500", 500, "application/json", "server_error"),
    ("status_429", 429, "application/json", "temporarily_unavailable"),
    ("malformed_body", 200, "application/json", None),
    ("html_body", 200, "text/html", None),
    ("no_access_token", 200, "application/json", None),
    ("invalid_client", 401, "application/json", "invalid_client"),
    ("invalid_grant", 400, "application/json", "invalid_grant"),
]


@pytest.mark.parametrize(
    ("mode", "status", "content_type", "error"),
    FAULT_CASES,
    ids=[case[0] for case in FAULT_CASES],
)
def test_fault_mode_served_once(
    sandbox: SandboxHandle,
    http: httpx.Client,
    mode: str,
    status: int,
    content_type: str,
    error: str | None,
) -> None:
    token = connect(http)
    sandbox.add_fault(mode=mode)

    faulted = refresh(http, token["refresh_token"])
    recovered = refresh(http, token["refresh_token"])

    assert faulted.status_code == status
    assert faulted.headers["content-type"].startswith(content_type)
    assert "access_token" not in _json_or_empty(faulted)
    if error is not None:
        assert faulted.json()["error"] == error
    assert recovered.status_code == 200
    assert sandbox.stats()["faults_served"] == 1
    assert sandbox.stats()["reuse_detections"] == 0


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return dict(body)


def test_malformed_body_is_not_json(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.add_fault(mode="malformed_body")

    response = refresh(http, "any-token")

    with pytest.raises(ValueError, match="Unterminated string"):
        response.json()


def test_retry_after_header_sent(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.add_fault(mode="status_429", retry_after=7)

    response = refresh(http, "any-token")

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


def test_fault_status_override(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.add_fault(mode="html_body", status=502)

    response = refresh(http, "any-token")

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")


def test_delay_fault_then_success(sandbox: SandboxHandle, http: httpx.Client) -> None:
    token = connect(http)
    sandbox.add_fault(mode="delay", delay_seconds=0.3)

    started = time.monotonic()
    response = refresh(http, token["refresh_token"])
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.3
    assert sandbox.stats()["faults_served"] == 1


def test_fault_count_and_grant_type(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.add_fault(mode="status_500", count=2, grant_type="refresh_token")
    token = connect(http)

    statuses = [refresh(http, token["refresh_token"]).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    assert sandbox.stats()["faults_served"] == 2


def test_faults_served_in_order(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.add_fault(mode="status_500")
    sandbox.add_fault(mode="status_429")

    statuses = [refresh(http, "any-token").status_code for _ in range(3)]

    assert statuses == [500, 429, 400]


def test_clear_faults(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.add_fault(mode="status_500", count=5)

    cleared = sandbox.clear_faults()

    assert cleared == 1
    assert refresh(http, "any-token").status_code == 400
    assert sandbox.admin("GET", "faults").json() == []


def test_invalid_fault_rejected(sandbox: SandboxHandle) -> None:
    response = sandbox.admin("POST", "faults", json={"mode": "explode", "count": 0})
    description = response.json()["error_description"]

    assert response.status_code == 400
    assert "mode" in description
    assert "count" in description


# Process


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::", "example.test"])
def test_non_loopback_host_refused(host: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "linkvault.sandbox", "--host", host],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert "not a loopback address" in result.stderr
    assert "SANDBOX READY" not in result.stdout


def test_sigterm_stops_cleanly() -> None:
    with running_sandbox(log_level="INFO") as sandbox:
        returncode = sandbox.stop()

    assert returncode == 0
    assert "Sandbox stopped" in sandbox.output()


def test_output_contains_no_secrets() -> None:
    secrets_seen: list[str] = [DEFAULT_CONFIDENTIAL_CLIENT_SECRET]
    with running_sandbox(log_level="DEBUG") as sandbox, sandbox.client() as client:
        pkce = Pkce.create()
        code = callback_params(authorize(client, pkce=pkce))["code"]
        token = exchange_code(client, PUBLIC, code, verifier=pkce.verifier).json()
        refreshed = refresh(client, token["refresh_token"]).json()
        refresh(client, token["refresh_token"])
        userinfo_status(client, refreshed["access_token"])
        confidential = callback_params(authorize(client, client_id=BASIC.client_id))
        basic_token = exchange_code(client, BASIC, confidential["code"]).json()
        revoke(client, basic_token["refresh_token"], BASIC)
        secrets_seen += [pkce.verifier, code, confidential["code"]]
        secrets_seen += [token["access_token"], token["refresh_token"]]
        secrets_seen += [refreshed["access_token"], refreshed["refresh_token"]]
        secrets_seen += [basic_token["access_token"], basic_token["refresh_token"]]
        sandbox.stop()

    output = sandbox.output()
    assert "Refresh token reuse detected" in output
    for secret in secrets_seen:
        assert secret not in output


def test_settings_survive_command_line() -> None:
    settings = SandboxSettings(
        port=8080,
        access_token_lifetime=5,
        refresh_token_lifetime=None,
        refresh_token_clock="fixed",
        clients=(CUSTOM_CLIENT,),
        token_endpoint_auth_methods=("client_secret_post",),
        redirect_uris=(REGISTERED_REDIRECT_URI,),
        denied_users=("mallory",),
        send_refresh_token_expires_in=True,
    )
    args = build_parser().parse_args(settings_to_argv(settings))

    assert settings_from_args(args) == settings
