"""A local OAuth 2.0 authorization server for end-to-end tests and demos.

Built on Authlib's Flask server parts, it issues authorization codes (PKCE
with S256, required for public clients), rotates refresh tokens on every use,
revokes a grant whose refresh token is replayed, accepts RFC 7009 revocation,
and serves a protected `/userinfo`. An admin API under `/_sandbox/` injects
faults into token responses and reports counters. It binds loopback only and
never logs tokens, codes or secrets.

Run it with `python -m linkvault.sandbox --port 0`; it prints
`SANDBOX READY <url>` on stdout once it accepts connections.
"""

from linkvault.sandbox.cli import main, settings_to_argv
from linkvault.sandbox.runner import READY_PREFIX, SandboxServer, serve
from linkvault.sandbox.server import create_app
from linkvault.sandbox.settings import SandboxClient, SandboxSettings

__all__ = [
    "READY_PREFIX",
    "SandboxClient",
    "SandboxServer",
    "SandboxSettings",
    "create_app",
    "main",
    "serve",
    "settings_to_argv",
]
