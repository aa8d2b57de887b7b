"""Application factory of the sandbox OAuth 2.0 authorization server."""

from __future__ import annotations

import logging

from authlib.integrations.flask_oauth2 import ResourceProtector
from flask import Flask

from linkvault.sandbox.admin import admin_blueprint
from linkvault.sandbox.endpoints import oauth_blueprint
from linkvault.sandbox.faults import FaultQueue
from linkvault.sandbox.oauth import (
    SandboxAuthorizationServer,
    SandboxBearerTokenValidator,
)
from linkvault.sandbox.settings import SandboxSettings
from linkvault.sandbox.state import EXTENSION_KEY, SandboxState
from linkvault.sandbox.store import SandboxStore


def create_app(settings: SandboxSettings) -> Flask:
    """Build the sandbox Flask application with fresh in-memory state.

    Routes: `GET /authorize`, `POST /token`, `POST /revoke`, `GET /userinfo`,
    `GET /.well-known/oauth-authorization-server` and the admin API under
    `/_sandbox/`.
    """
    silence_secret_logging()
    app = Flask("linkvault.sandbox")
    store = SandboxStore(settings)

    protector = ResourceProtector()
    protector.register_token_validator(SandboxBearerTokenValidator(store))
    app.extensions[EXTENSION_KEY] = SandboxState(
        settings=settings,
        store=store,
        faults=FaultQueue(),
        authorization_server=SandboxAuthorizationServer(app, store),
        resource_protector=protector,
    )

    app.register_blueprint(oauth_blueprint)
    app.register_blueprint(admin_blueprint)
    return app


def silence_secret_logging() -> None:
    """Keep third-party loggers that print secrets above DEBUG.

    Authlib 1.9 logs every issued token response at DEBUG, and werkzeug's
    access log prints query strings that carry authorization codes. An
    explicit level on these loggers still applies when the root logger is at
    DEBUG.
    """
    logging.getLogger("authlib").setLevel(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
