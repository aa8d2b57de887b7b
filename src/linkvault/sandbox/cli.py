"""Command line of `python -m linkvault.sandbox`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from linkvault.sandbox.runner import serve
from linkvault.sandbox.settings import (
    ALL_TOKEN_ENDPOINT_AUTH_METHODS,
    SandboxClient,
    SandboxSettings,
)

#: Environment variable read when `--admin-token` is not given, which keeps
#: the token out of the process list.
ADMIN_TOKEN_ENV = "LINKVAULT_SANDBOX_ADMIN_TOKEN"


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser; every option maps to a `SandboxSettings` field."""
    parser = argparse.ArgumentParser(
        prog="python -m linkvault.sandbox",
        description=(
            "Run a local OAuth 2.0 authorization server for tests and demos. "
            "It approves the user named in login_hint without a login page, "
            "rotates refresh tokens and detects their reuse."
        ),
    )
    _add_server_options(parser)
    _add_lifetime_options(parser)
    _add_client_options(parser)
    return parser


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address to bind: 127.0.0.1 (default), ::1 or localhost",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port; 0 (default) picks a free port"
    )
    parser.add_argument(
        "--admin-token",
        default=os.environ.get(ADMIN_TOKEN_ENV),
        help=(
            "token the /_sandbox/ admin API requires in the X-Sandbox-Admin-Token "
            f"header (default: ${ADMIN_TOKEN_ENV}, else no token)"
        ),
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="level of the log written to stderr (default: INFO)",
    )


def _add_lifetime_options(parser: argparse.ArgumentParser) -> None:
    defaults = SandboxSettings()
    parser.add_argument(
        "--access-token-lifetime",
        type=int,
        default=defaults.access_token_lifetime,
        metavar="SECONDS",
        help="access token lifetime in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--refresh-token-lifetime",
        type=int,
        default=defaults.refresh_token_lifetime,
        metavar="SECONDS",
        help=(
            "refresh token lifetime in seconds; 0 never expires (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--refresh-token-clock",
        choices=["sliding", "fixed"],
        default=defaults.refresh_token_clock,
        help=(
            "sliding: each rotated refresh token gets a full lifetime; fixed: the "
            "lifetime counts from the first authorization (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--authorization-code-lifetime",
        type=int,
        default=defaults.authorization_code_lifetime,
        metavar="SECONDS",
        help="authorization code lifetime in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--send-refresh-token-expires-in",
        action="store_true",
        help="add refresh_token_expires_in to token responses",
    )
    parser.add_argument(
        "--omit-expires-in",
        action="store_true",
        help="leave expires_in out of token responses (tokens still expire)",
    )


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--client",
        dest="clients",
        action="append",
        type=_confidential_client,
        default=[],
        metavar="ID:SECRET",
        help=(
            "register a confidential client (repeatable). Without --client and "
            "--public-client, sandbox-confidential:sandbox-secret and "
            "sandbox-public are registered."
        ),
    )
    parser.add_argument(
        "--public-client",
        dest="public_clients",
        action="append",
        default=[],
        metavar="ID",
        help="register a public client that uses PKCE and no secret (repeatable)",
    )
    parser.add_argument(
        "--auth-method",
        dest="auth_methods",
        action="append",
        choices=list(ALL_TOKEN_ENDPOINT_AUTH_METHODS),
        default=[],
        help=(
            "allow this client authentication method at the token and revocation "
            "endpoints (repeatable; default: all three)"
        ),
    )
    parser.add_argument(
        "--redirect-uri",
        dest="redirect_uris",
        action="append",
        default=[],
        metavar="URI",
        help=(
            "register a redirect URI for every client (repeatable); loopback "
            "http URIs on any port are always accepted"
        ),
    )
    parser.add_argument(
        "--deny-user",
        dest="denied_users",
        action="append",
        default=[],
        metavar="USER",
        help="deny authorization requests whose login_hint is USER (repeatable)",
    )
    parser.add_argument(
        "--default-scope",
        default=SandboxSettings().default_scope,
        help="scope granted when a request asks for none (default: %(default)s)",
    )


def _confidential_client(value: str) -> SandboxClient:
    try:
        return SandboxClient.parse(value)
    except (ValueError, ValidationError) as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def settings_from_args(args: argparse.Namespace) -> SandboxSettings:
    """Build settings from parsed arguments.

    Raises:
        pydantic.ValidationError: an option value is invalid.
    """
    fields: dict[str, object] = {
        "host": args.host,
        "port": args.port,
        "access_token_lifetime": args.access_token_lifetime,
        "refresh_token_lifetime": args.refresh_token_lifetime or None,
        "refresh_token_clock": args.refresh_token_clock,
        "authorization_code_lifetime": args.authorization_code_lifetime,
        "send_refresh_token_expires_in": args.send_refresh_token_expires_in,
        "omit_expires_in": args.omit_expires_in,
        "redirect_uris": tuple(args.redirect_uris),
        "denied_users": tuple(args.denied_users),
        "default_scope": args.default_scope,
    }
    public = [SandboxClient(client_id=client_id) for client_id in args.public_clients]
    if args.clients or public:
        fields["clients"] = (*args.clients, *public)
    if args.auth_methods:
        fields["token_endpoint_auth_methods"] = tuple(args.auth_methods)
    if args.admin_token:
        fields["admin_token"] = args.admin_token

    return SandboxSettings.model_validate(fields)


def settings_to_argv(settings: SandboxSettings) -> list[str]:
    """Return the options that make the command line build `settings`.

    NOTE: client secrets appear in the returned list, and so in the process
    list of a spawned sandbox. The admin token is left out: pass it through
    the environment variable named by `ADMIN_TOKEN_ENV`.
    """
    argv = [
        f"--host={settings.host}",
        f"--port={settings.port}",
        f"--access-token-lifetime={settings.access_token_lifetime}",
        f"--refresh-token-lifetime={settings.refresh_token_lifetime or 0}",
        f"--refresh-token-clock={settings.refresh_token_clock}",
        f"--authorization-code-lifetime={settings.authorization_code_lifetime}",
        f"--default-scope={settings.default_scope}",
    ]
    if settings.send_refresh_token_expires_in:
        argv.append("--send-refresh-token-expires-in")
    if settings.omit_expires_in:
        argv.append("--omit-expires-in")
    argv += _client_argv(settings.clients)
    argv += [f"--auth-method={m}" for m in settings.token_endpoint_auth_methods]
    argv += [f"--redirect-uri={uri}" for uri in settings.redirect_uris]
    argv += [f"--deny-user={user}" for user in settings.denied_users]
    return argv


def _client_argv(clients: Sequence[SandboxClient]) -> list[str]:
    argv = []
    for client in clients:
        if client.client_secret is None:
            argv.append(f"--public-client={client.client_id}")
        else:
            secret = client.client_secret.get_secret_value()
            argv.append(f"--client={client.client_id}:{secret}")
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, then serve until SIGTERM or SIGINT; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValidationError as error:
        parser.error(_describe(error))

    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    serve(settings)
    return 0


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in error.errors(include_url=False)
    )
