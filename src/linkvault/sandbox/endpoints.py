"""OAuth 2.0 endpoints of the sandbox: authorization, token, revocation, userinfo.

The authorization endpoint has no login page. It signs in the user named in
`login_hint` and approves at once, so flows run headless. It denies with
`access_denied` when the request carries `sandbox_deny=1` or names a user listed
in the `denied_users` setting.
"""

from __future__ import annotations

import logging
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, jsonify, request

from linkvault.sandbox.faults import render_fault, wait_scheduled_delay
from linkvault.sandbox.state import current_state

logger = logging.getLogger(__name__)

oauth_blueprint = Blueprint("sandbox_oauth", __name__)


def json_error(status: int, error: str, description: str) -> Response:
    """Build an RFC 6749 section 5.2 style error response."""
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@oauth_blueprint.get("/authorize")
def authorize() -> Any:
    """Approve or deny an authorization request for the user in `login_hint`."""
    state = current_state()
    server = state.authorization_server
    user = request.args.get("login_hint", "").strip()
    if not user:
        logger.info("Rejected an authorization request without login_hint")
        return json_error(
            400,
            "invalid_request",
            "login_hint is missing. The sandbox has no login page and signs in "
            "the user named in login_hint: add login_hint=<user id> to the "
            "authorization request.",
        )

    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return server.handle_error_response(None, error)

    if _is_denied(user):
        state.store.count("access_denied")
        logger.info("Authorization denied for user %s", user)
        return server.create_authorization_response(grant_user=None, grant=grant)

    state.store.count("authorizations")
    return server.create_authorization_response(grant_user=user, grant=grant)


def _is_denied(user: str) -> bool:
    if request.args.get("sandbox_deny") == "1":
        return True

    return user in current_state().settings.denied_users


@oauth_blueprint.post("/token")
def issue_token() -> Any:
    """Serve a queued fault, or handle the token request with Authlib."""
    state = current_state()
    grant_type = request.form.get("grant_type")
    fault = state.faults.take(grant_type)
    if fault is not None:
        state.store.count("faults_served")
        logger.info("Serving fault %s on a %s token request", fault.mode, grant_type)
        response = render_fault(fault)
        if response is not None:
            return response

    response = state.authorization_server.create_token_response()
    wait_scheduled_delay()
    return response


@oauth_blueprint.post("/revoke")
def revoke_token() -> Any:
    """Revoke an access or refresh token and its grant (RFC 7009)."""
    server = current_state().authorization_server
    return server.create_endpoint_response("revocation")


@oauth_blueprint.get("/userinfo")
def userinfo() -> Any:
    """Return the user of a valid bearer access token."""
    # acquire() turns an invalid, expired or revoked token into a 401.
    with current_state().resource_protector.acquire() as token:
        return jsonify(
            {
                "sub": token.user_id,
                "client_id": token.grant.client_id,
                "scope": token.get_scope(),
            }
        )


@oauth_blueprint.get("/.well-known/oauth-authorization-server")
def metadata() -> Any:
    """Describe the endpoints and methods of this server (RFC 8414)."""
    settings = current_state().settings
    issuer = request.host_url.rstrip("/")
    return jsonify(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "revocation_endpoint": f"{issuer}/revoke",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": list(
                settings.token_endpoint_auth_methods
            ),
            "revocation_endpoint_auth_methods_supported": list(
                settings.token_endpoint_auth_methods
            ),
        }
    )
