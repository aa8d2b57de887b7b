"""Admin API of the sandbox under `/_sandbox/`, for tests and demos.

It injects faults, reports counters and grants, revokes a user's grants,
advances the sandbox clock and resets all state. It serves loopback clients
only. When the `admin_token` setting is set, it also requires that token in the
`X-Sandbox-Admin-Token` header. Grants are reported with the SHA-256 of
their current refresh token, never the token itself.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linkvault.sandbox.endpoints import json_error
from linkvault.sandbox.faults import FaultSpec
from linkvault.sandbox.state import current_state

logger = logging.getLogger(__name__)

ADMIN_TOKEN_HEADER = "X-Sandbox-Admin-Token"

admin_blueprint = Blueprint("sandbox_admin", __name__, url_prefix="/_sandbox")


class RevokeUserRequest(BaseModel):
    """Body of `POST /_sandbox/revoke-user`."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1)


class AdvanceClockRequest(BaseModel):
    """Body of `POST /_sandbox/clock`; the clock only moves forward."""

    model_config = ConfigDict(extra="forbid")

    advance_seconds: float = Field(ge=0)


@admin_blueprint.before_request
def require_admin_access() -> Response | None:
    """Reject callers that are not on loopback or lack the admin token."""
    if not _is_loopback(request.remote_addr):
        logger.warning("Rejected an admin request from %s", request.remote_addr)
        return json_error(
            403,
            "access_denied",
            "The sandbox admin API serves loopback clients only.",
        )

    expected = current_state().settings.admin_token
    if expected is None:
        return None

    sent = request.headers.get(ADMIN_TOKEN_HEADER, "")
    if not hmac.compare_digest(
        expected.get_secret_value().encode("utf-8"), sent.encode("utf-8")
    ):
        logger.warning("Rejected an admin request without the admin token")
        return json_error(
            401,
            "invalid_token",
            f"The {ADMIN_TOKEN_HEADER} header is missing or wrong; send the admin "
            "token the sandbox was started with.",
        )
    return None


def _is_loopback(address: str | None) -> bool:
    if address is None:
        return False

    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@admin_blueprint.errorhandler(ValidationError)
def reject_invalid_body(error: ValidationError) -> Response:
    """Return a 400 response that names each invalid field of the JSON body."""
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
        for problem in error.errors(include_url=False)
    ]
    return json_error(400, "invalid_request", "; ".join(problems))


@admin_blueprint.get("/stats")
def stats() -> Response:
    """Return the counters of the sandbox."""
    return jsonify(current_state().store.stats())


@admin_blueprint.post("/faults")
def add_fault() -> tuple[Response, int]:
    """Queue a fault for the next token requests."""
    fault = FaultSpec.model_validate_json(request.get_data())
    current_state().faults.add(fault)
    logger.info("Fault %s queued for %d token requests", fault.mode, fault.count)
    return jsonify(fault.model_dump()), 201


@admin_blueprint.get("/faults")
def list_faults() -> Response:
    """Return the pending faults in the order they will be served."""
    return jsonify(current_state().faults.pending())


@admin_blueprint.delete("/faults")
def clear_faults() -> Response:
    """Drop every pending fault."""
    return jsonify({"cleared": current_state().faults.clear()})


@admin_blueprint.get("/grants")
def list_grants() -> Response:
    """Return every grant, or those of the user in the `user` query parameter."""
    user = request.args.get("user")
    return jsonify(current_state().store.grant_reports(user))


@admin_blueprint.post("/revoke-user")
def revoke_user() -> Response:
    """Revoke every grant of a user, as if they removed access at the provider."""
    body = RevokeUserRequest.model_validate_json(request.get_data())
    revoked = current_state().store.revoke_user(body.user)
    return jsonify({"user": body.user, "grants_revoked": revoked})


@admin_blueprint.post("/clock")
def advance_clock() -> Response:
    """Move the sandbox clock forward, so tokens expire without waiting."""
    body = AdvanceClockRequest.model_validate_json(request.get_data())
    offset = current_state().store.advance_clock(body.advance_seconds)
    return jsonify({"offset_seconds": offset})


@admin_blueprint.post("/reset")
def reset() -> Response:
    """Forget all grants, tokens, codes, counters, faults and the clock offset."""
    state = current_state()
    state.store.reset()
    state.faults.clear()
    logger.info("Sandbox state reset")
    return jsonify({"reset": True})
