"""The per-application state that the sandbox's request handlers share."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.integrations.flask_oauth2 import ResourceProtector
from flask import current_app

from linkvault.sandbox.faults import FaultQueue
from linkvault.sandbox.oauth import SandboxAuthorizationServer
from linkvault.sandbox.settings import SandboxSettings
from linkvault.sandbox.store import SandboxStore

#: Key of the state in `Flask.extensions`.
EXTENSION_KEY = "linkvault_sandbox"


@dataclass(frozen=True)
class SandboxState:
    """Everything one sandbox application holds, built once by `create_app`."""

    settings: SandboxSettings
    store: SandboxStore
    faults: FaultQueue
    authorization_server: SandboxAuthorizationServer
    resource_protector: ResourceProtector


def current_state() -> SandboxState:
    """Return the state of the application handling the current request."""
    state: SandboxState = current_app.extensions[EXTENSION_KEY]
    return state
