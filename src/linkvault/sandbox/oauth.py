"""Authlib server parts of the sandbox: clients, grants, revocation, bearer tokens.

Authlib's refresh token grant neither rotates refresh tokens nor notices a
replay. Here every refresh issues a new refresh token, and the check that a
refresh token (or authorization code) is unused, its redemption and the new
token's storage all happen under the store's lock. Of two concurrent requests
with the same refresh token exactly one succeeds; the other is a replay, which
revokes the grant, as strict providers do.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Any
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask

from linkvault.sandbox.faults import wait_scheduled_delay
from linkvault.sandbox.settings import (
    ALL_TOKEN_ENDPOINT_AUTH_METHODS,
    SandboxClient,
    SandboxSettings,
)
from linkvault.sandbox.store import (
    AuthorizationCodeRecord,
    CredentialState,
    SandboxStore,
    TokenRecord,
)

logger = logging.getLogger(__name__)

_CONFIDENTIAL_AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
_GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})

_REFRESH_TOKEN_ERRORS = {
    CredentialState.USED: (
        "The refresh token was already used. Refresh tokens rotate on every use, "
        "so the sandbox treats this as a replay and revoked every token of the "
        "grant; the user must authorize again."
    ),
    CredentialState.REVOKED: (
        "The grant of this refresh token is revoked; the user must authorize again."
    ),
    CredentialState.EXPIRED: (
        "The refresh token expired; the user must authorize again."
    ),
}

_CODE_ERRORS = {
    CredentialState.USED: (
        "The authorization code was already used; the tokens issued from it are "
        "revoked. Start a new authorization request."
    ),
    CredentialState.EXPIRED: (
        "The authorization code expired; start a new authorization request."
    ),
}


def is_loopback_redirect_uri(uri: str) -> bool:
    """Return whether `uri` is an http redirect URI on a loopback host.

    RFC 8252 section 7.3: a native client listens on a port that it picks at
    request time, so any port on a loopback host is accepted.
    """
    parts = urlsplit(uri)
    if parts.scheme != "http" or parts.fragment or parts.hostname is None:
        return False

    try:
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return False

    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class SandboxClientModel:
    """A registered client as Authlib's `ClientMixin` expects it."""

    def __init__(self, client: SandboxClient, settings: SandboxSettings) -> None:
        self.client_id = client.client_id
        self.is_public = client.is_public
        self._secret = client.client_secret
        self._settings = settings

    def __repr__(self) -> str:
        kind = "public" if self.is_public else "confidential"
        return f"SandboxClientModel({self.client_id!r}, {kind})"

    def get_client_id(self) -> str:
        """Return the client id."""
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """Return the first registered redirect URI, if any."""
        return next(iter(self._settings.redirect_uris), None)

    def get_allowed_scope(self, scope: str | None) -> str:
        """Grant any requested scope, or the default scope when none is requested."""
        return scope or self._settings.default_scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Accept registered redirect URIs and loopback ones on any port."""
        if redirect_uri in self._settings.redirect_uris:
            return True

        return is_loopback_redirect_uri(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        """Compare the secret in constant time; a public client has none."""
        if self._secret is None:
            return False

        expected = self._secret.get_secret_value().encode("utf-8")
        return hmac.compare_digest(expected, client_secret.encode("utf-8"))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Accept `none` from public clients and secrets from confidential ones."""
        if method not in self._settings.token_endpoint_auth_methods:
            return False
        if self.is_public:
            return method == "none"

        return method in _CONFIDENTIAL_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        """Accept only the authorization code flow."""
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        """Accept the authorization code and refresh token grants."""
        return grant_type in _GRANT_TYPES


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE that accepts only S256 and requires it from public clients.

    The `plain` method protects nothing once the request is seen (RFC 7636
    section 7.2), so the sandbox offers S256 alone, like current providers.
    """

    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)

    def validate_code_challenge(self, grant: Any, redirect_uri: Any) -> None:
        """Reject a missing challenge from a public client and any method but S256."""
        super().validate_code_challenge(grant, redirect_uri)

        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if grant.request.client.is_public and not challenge:
            raise InvalidRequestError(
                "Public clients must send code_challenge with "
                "code_challenge_method=S256 (PKCE, RFC 7636)."
            )
        if challenge and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "code_challenge_method must be S256; the sandbox does not "
                "accept plain or a missing method."
            )


class SandboxAuthorizationCodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """Authorization code grant whose codes are single use and short-lived."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_TOKEN_ENDPOINT_AUTH_METHODS

    @property
    def store(self) -> SandboxStore:
        """The state of the server this grant runs on."""
        store: SandboxStore = self.server.store
        return store

    def save_authorization_code(self, code: str, request: Any) -> None:
        """Store the code with its client, user, scope, redirect URI and challenge."""
        data = request.payload.data
        lifetime = self.store.settings.authorization_code_lifetime
        record = AuthorizationCodeRecord(
            client_id=request.client.get_client_id(),
            user_id=request.user,
            scope=request.scope,
            redirect_uri=request.payload.redirect_uri,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            expires_at=self.store.now() + lifetime,
        )
        self.store.save_code(code, record)

    def query_authorization_code(
        self, code: str, client: Any
    ) -> AuthorizationCodeRecord | None:
        """Find a code issued to `client`; reject a used or expired one."""
        record = self.store.find_code(code)
        if record is None or record.client_id != client.get_client_id():
            return None

        self._require_usable(record)
        return record

    def _require_usable(self, record: AuthorizationCodeRecord) -> None:
        state = self.store.code_state(record)
        if state is CredentialState.USED:
            self.store.report_code_reuse(record)
        if state is not CredentialState.USABLE:
            logger.info(
                "Rejected a %s authorization code of user %s",
                state.value,
                record.user_id,
            )
            raise InvalidGrantError(_CODE_ERRORS[state])

    def create_token_response(self) -> Any:
        """Redeem the code under the lock, then issue the first token response."""
        record = self.request.authorization_code
        wait_scheduled_delay()
        with self.store.lock:
            self._require_usable(record)
            self.store.mark_code_used(record)
            return super().create_token_response()

    def delete_authorization_code(self, authorization_code: Any) -> None:
        """Keep the code: it is already marked used, so a replay is recognised."""

    def authenticate_user(self, authorization_code: AuthorizationCodeRecord) -> str:
        """Return the user who approved the authorization request."""
        return authorization_code.user_id

    def save_token(self, token: dict[str, Any]) -> None:
        """Store the token response as the start of a new grant."""
        record = self.store.save_token(
            token,
            client_id=self.request.client.get_client_id(),
            user_id=self.request.user,
            code=self.request.authorization_code,
        )
        add_refresh_token_expires_in(token, record, self.store)


class RotatingRefreshTokenGrant(RefreshTokenGrant):  # type: ignore[misc]
    """Refresh token grant that rotates refresh tokens and detects replays."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_TOKEN_ENDPOINT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def store(self) -> SandboxStore:
        """The state of the server this grant runs on."""
        store: SandboxStore = self.server.store
        return store

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord:
        """Find the refresh token; reject an unknown, used, revoked or expired one."""
        record = self.store.find_refresh_token(refresh_token)
        if record is None:
            raise InvalidGrantError("The refresh token is not known to this server.")

        self._require_usable(record)
        return record

    def _require_usable(self, record: TokenRecord) -> None:
        state = self.store.refresh_token_state(record)
        if state is CredentialState.USED:
            self.store.report_refresh_token_reuse(record)
        if state is not CredentialState.USABLE:
            logger.info(
                "Rejected a %s refresh token of grant %s",
                state.value,
                record.grant.grant_id,
            )
            raise InvalidGrantError(_REFRESH_TOKEN_ERRORS[state])

    def create_token_response(self) -> Any:
        """Redeem the refresh token under the lock, then issue the rotated tokens.

        The check runs again here because a concurrent request may have
        redeemed the same refresh token since validation.
        """
        record = self.request.refresh_token
        wait_scheduled_delay()
        with self.store.lock:
            self._require_usable(record)
            self.store.mark_refresh_token_used(record)
            return super().create_token_response()

    def authenticate_user(self, refresh_token: TokenRecord) -> str:
        """Return the user of the grant."""
        return refresh_token.user_id

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        """Do nothing: the old refresh token was marked used before issuing."""

    def save_token(self, token: dict[str, Any]) -> None:
        """Store the rotated token response as the grant's current one."""
        old = self.request.refresh_token
        record = self.store.save_token(
            token,
            client_id=old.grant.client_id,
            user_id=old.user_id,
            grant=old.grant,
        )
        add_refresh_token_expires_in(token, record, self.store)


class SandboxRevocationEndpoint(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 revocation: revoking either token revokes the whole grant."""

    CLIENT_AUTH_METHODS = ALL_TOKEN_ENDPOINT_AUTH_METHODS

    def query_token(
        self, token_string: str, token_type_hint: str | None
    ) -> TokenRecord | None:
        """Find an access or refresh token, looking first where the hint points."""
        store: SandboxStore = self.server.store
        if token_type_hint == "access_token":
            lookups = (store.find_access_token, store.find_refresh_token)
        else:
            lookups = (store.find_refresh_token, store.find_access_token)

        for lookup in lookups:
            record = lookup(token_string)
            if record is not None:
                return record
        return None

    def revoke_token(self, token: TokenRecord, request: Any) -> None:
        """Revoke the grant of the token and count the revocation."""
        store: SandboxStore = self.server.store
        store.count("revocations")
        store.revoke_grant(token.grant, reason="revocation request")


class SandboxBearerTokenValidator(BearerTokenValidator):  # type: ignore[misc]
    """Validate access tokens for the protected resource."""

    def __init__(self, store: SandboxStore) -> None:
        super().__init__(realm="sandbox")
        self._store = store

    def authenticate_token(self, token_string: str) -> TokenRecord | None:
        """Return the record of the access token, or None if unknown."""
        return self._store.find_access_token(token_string)


class SandboxAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's Flask authorization server wired to the sandbox store."""

    def __init__(self, app: Flask, store: SandboxStore) -> None:
        self.store = store
        settings = store.settings
        self._clients = {
            client.client_id: SandboxClientModel(client, settings)
            for client in settings.clients
        }
        super().__init__(app, query_client=self._clients.get)

        generator = BearerTokenGenerator(
            _generate_access_token,
            _generate_refresh_token,
            settings.access_token_lifetime,
        )
        self.register_token_generator("default", generator)
        self.register_grant(
            SandboxAuthorizationCodeGrant, [S256CodeChallenge(required=True)]
        )
        self.register_grant(RotatingRefreshTokenGrant)
        self.register_endpoint(SandboxRevocationEndpoint)


def add_refresh_token_expires_in(
    token: dict[str, Any], record: TokenRecord, store: SandboxStore
) -> None:
    """Shape the stored token response as the settings ask.

    Adds `refresh_token_expires_in`, and drops `expires_in` for a provider that
    does not announce lifetimes (the store has recorded the expiry already).
    """
    if store.settings.omit_expires_in:
        token.pop("expires_in", None)
    if not store.settings.send_refresh_token_expires_in:
        return

    expires_in = store.refresh_token_expires_in(record)
    if expires_in is not None:
        token["refresh_token_expires_in"] = expires_in


def _generate_access_token(**_: Any) -> str:
    return str(generate_token(42))


def _generate_refresh_token(**_: Any) -> str:
    return str(generate_token(48))
