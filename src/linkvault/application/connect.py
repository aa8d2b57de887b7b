"""Connecting accounts: OAuth 2.0 authorization code with PKCE, and API keys.

The flow (RFC 6749 section 4.1 with RFC 7636):

1. `start_authorization` stores a `pending` connection (or picks the one to
   reconnect) and a pending authorisation: the SHA-256 of a random `state`,
   the PKCE verifier encrypted, the redirect URI and a 10-minute expiry. It
   returns the provider's authorisation URL.
2. The provider redirects the user to the redirect URI with `code` and `state`.
3. `complete_authorization` checks the state (known, unused, unexpired, same
   provider and redirect URI) before it changes anything, consumes it, then
   exchanges the code outside any database transaction and stores the token
   set encrypted.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from linkvault.application.client_secrets import resolve_client_credentials
from linkvault.application.credentials import (
    open_token_set,
    seal_api_key,
    seal_token_set,
)
from linkvault.application.scheduling import next_refresh_at
from linkvault.domain.authorization import (
    AUTHORIZATION_TTL,
    AuthorizationState,
    hash_state,
)
from linkvault.domain.connection import ProviderConnection
from linkvault.domain.credentials import ApiKey
from linkvault.domain.errors import (
    AuthorizationDeniedError,
    ConnectionNotFoundError,
    InvalidConnectionError,
    InvalidProviderError,
    InvalidStateError,
    ProviderNotFoundError,
)
from linkvault.domain.events import ConnectionEvent, EventType
from linkvault.domain.provider import Provider
from linkvault.domain.status import ConnectionStatus, CredentialType
from linkvault.domain.token_response import TokenFailure, TokenSuccess
from linkvault.ids import new_id
from linkvault.ports.cipher import Cipher, oauth_state_context
from linkvault.ports.clock import Clock
from linkvault.ports.repositories import UnitOfWork, UnitOfWorkFactory
from linkvault.ports.token_endpoint import TokenEndpoint

logger = logging.getLogger(__name__)

# Statuses a connection can be re-authorised from, keeping its id. `active`
# is included so that a fixed-lifetime grant (Schwab's 7 days) can be renewed
# before it runs out; `pending` restarts an abandoned flow.
RECONNECTABLE = frozenset(
    {
        ConnectionStatus.PENDING,
        ConnectionStatus.ACTIVE,
        ConnectionStatus.EXPIRED,
        ConnectionStatus.REVOKED,
        ConnectionStatus.FAILED,
    }
)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """The authorisation URL to send the user to; it contains the `state` value."""

    connection_id: UUID
    url: str
    expires_at: datetime

    def __repr__(self) -> str:
        # The URL contains the state, which completes the flow: keep it out.
        return (
            f"AuthorizationRequest(connection_id={self.connection_id}, "
            f"expires_at={self.expires_at.isoformat()})"
        )


@dataclass(frozen=True, slots=True)
class DisconnectResult:
    """The disconnected connection and whether the provider revoked the grant."""

    connection: ProviderConnection
    revoked: bool
    revocation_error: str | None


@dataclass(frozen=True, slots=True)
class AuthorizationCallback:
    """The query parameters of the provider's redirect (RFC 6749 section 4.1.2)."""

    state: str
    code: str | None = None
    error: str | None = None
    error_description: str | None = None

    def __repr__(self) -> str:
        return f"AuthorizationCallback(error={self.error!r})"

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> AuthorizationCallback:
        state = query.get("state")
        if not state:
            raise InvalidStateError(
                "The callback has no state parameter; start the connection again."
            )
        return cls(
            state=state,
            code=query.get("code"),
            error=query.get("error"),
            error_description=query.get("error_description"),
        )


class ConnectService:
    """Use cases that link, re-link, unlink and delete connections."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        cipher: Cipher,
        clock: Clock,
        token_endpoint: TokenEndpoint,
        environ: Mapping[str, str],
    ) -> None:
        self._unit_of_work = unit_of_work
        self._cipher = cipher
        self._clock = clock
        self._endpoint = token_endpoint
        self._environ = environ

    async def start_authorization(
        self,
        *,
        user_id: UUID,
        provider_slug: str,
        redirect_uri: str,
        alias: str | None = None,
        extra_params: Mapping[str, str] | None = None,
    ) -> AuthorizationRequest:
        """Create a `pending` connection and return the authorisation URL."""
        now = self._clock.now()
        async with self._unit_of_work() as work:
            provider = await _oauth_provider(work, provider_slug)
            connection = ProviderConnection.new(
                id=new_id(),
                user_id=user_id,
                provider_id=provider.id,
                provider_slug=provider.slug,
                now=now,
                alias=alias,
            )
            await work.connections.save(connection)
            await _record(work, connection, EventType.CREATED, now, None, "user")
            request = await self._begin(
                work, provider, connection, redirect_uri, extra_params
            )
        logger.info("Started connection %s to %s", connection.id, provider.slug)
        return request

    async def start_reconnect(
        self,
        connection_id: UUID,
        *,
        redirect_uri: str,
        extra_params: Mapping[str, str] | None = None,
    ) -> AuthorizationRequest:
        """Start a new authorisation for an existing connection, keeping its id."""
        async with self._unit_of_work() as work:
            connection = await _require_connection(work, connection_id)
            if connection.status not in RECONNECTABLE:
                raise InvalidConnectionError(
                    f"Connection {connection_id} is {connection.status.value}; "
                    "a disconnected connection cannot be reconnected. Start a "
                    "new connection instead."
                )
            provider = await _oauth_provider(work, connection.provider_slug)
            request = await self._begin(
                work, provider, connection, redirect_uri, extra_params
            )
        logger.info("Started reconnect of %s", connection_id)
        return request

    async def complete_authorization(
        self, callback: AuthorizationCallback, *, provider_slug: str, redirect_uri: str
    ) -> ProviderConnection:
        """Finish a flow from the provider's callback.

        Raises:
            InvalidStateError: The state is unknown, used, expired, or belongs
                to another provider or redirect URI. Nothing changes.
            AuthorizationDeniedError: The user declined or the code exchange
                failed. A first connect becomes `failed`; a reconnect keeps
                its status. Either way an event records the reason.
        """
        now = self._clock.now()
        async with self._unit_of_work() as work:
            provider = await _oauth_provider(work, provider_slug)
            state = await self._claim_state(
                work, callback.state, provider, redirect_uri, now
            )
            connection = await _require_connection(work, state.connection_id)
            verifier = self._open_verifier(state)

        if callback.error or not callback.code:
            reason = _callback_reason(callback)
            await self._fail(connection.id, reason, now)
            raise AuthorizationDeniedError(
                f"The provider returned {reason} for connection {connection.id}; "
                "the user can try again.",
                reason,
            )

        client = resolve_client_credentials(provider, self._cipher, self._environ)
        outcome = await self._endpoint.exchange_code(
            provider,
            client,
            code=callback.code,
            redirect_uri=redirect_uri,
            code_verifier=verifier,
            now=now,
        )
        if isinstance(outcome, TokenFailure):
            await self._fail(connection.id, outcome.reason, now)
            raise AuthorizationDeniedError(
                f"Exchanging the authorization code of connection {connection.id} "
                f"failed: {outcome.reason}.",
                outcome.reason,
            )
        return await self._activate(connection.id, provider, outcome, now)

    async def connect_api_key(
        self,
        *,
        user_id: UUID,
        provider_slug: str,
        api_key: str,
        alias: str | None = None,
    ) -> ProviderConnection:
        """Store an API key as a new `active` connection."""
        now = self._clock.now()
        async with self._unit_of_work() as work:
            provider = await _require_provider(work, provider_slug)
            if provider.credential_type is not CredentialType.API_KEY:
                raise InvalidProviderError(
                    f"Provider {provider.slug} uses "
                    f"{provider.credential_type.value}, not API keys; connect it "
                    "with the authorisation flow instead."
                )
            connection = ProviderConnection.new(
                id=new_id(),
                user_id=user_id,
                provider_id=provider.id,
                provider_slug=provider.slug,
                now=now,
                alias=alias,
            )
            credentials = seal_api_key(self._cipher, connection, ApiKey(api_key))
            connection.activate(credentials, now)
            await work.connections.save(connection)
            await _record(work, connection, EventType.CONNECTED, now, None, "user")
        logger.info("Connected %s to %s with an API key", connection.id, provider.slug)
        return connection

    async def prune_expired_states(self) -> int:
        """Delete pending authorisations that expired; returns how many.

        A user who never returns from the provider leaves a state row behind.
        The refresh worker calls this every ten minutes, so the table stays small.
        """
        async with self._unit_of_work() as work:
            removed = await work.states.delete_expired(self._clock.now())
        if removed:
            logger.info("Deleted %d expired authorization states", removed)
        return removed

    async def disconnect(
        self, connection_id: UUID, *, actor: str = "user"
    ) -> DisconnectResult:
        """Revoke at the provider when it supports it, clear the credentials.

        Idempotent: a disconnected connection is returned as it is, without a
        provider call. A failed revocation is logged and recorded, and the
        connection is disconnected locally all the same, because the user asked
        to stop using it.
        """
        async with self._unit_of_work(readonly=True) as work:
            connection = await _require_connection(work, connection_id)
            provider = await work.providers.get(connection.provider_id)
        if connection.status is ConnectionStatus.DISCONNECTED:
            return DisconnectResult(connection, revoked=False, revocation_error=None)

        revoked, error = await self._revoke(connection, provider)
        now = self._clock.now()
        async with self._unit_of_work() as work:
            # Re-read: a worker may have rotated the tokens meanwhile.
            current = await _require_connection(work, connection_id)
            before = current.status
            current.disconnect(now, "disconnected by " + actor)
            await work.connections.save(current)
            details: dict[str, object] = {"revoked": revoked}
            if error:
                details["revocation_error"] = error
            await work.events.append(
                ConnectionEvent.record(
                    id=new_id(),
                    connection=current,
                    event_type=EventType.DISCONNECTED,
                    occurred_at=now,
                    status_before=before.value,
                    reason=current.status_reason,
                    actor=actor,
                    details=details,
                )
            )
        logger.info("Disconnected %s (revoked at provider: %s)", connection_id, revoked)
        return DisconnectResult(current, revoked=revoked, revocation_error=error)

    async def _revoke(
        self, connection: ProviderConnection, provider: Provider | None
    ) -> tuple[bool, str | None]:
        credentials = connection.credentials
        if provider is None or not provider.revocation_url or credentials is None:
            return False, None
        if credentials.credential_type is not CredentialType.OAUTH2:
            return False, None

        tokens = open_token_set(self._cipher, connection)
        client = resolve_client_credentials(provider, self._cipher, self._environ)
        # Revoking the refresh token ends the whole grant (RFC 7009 section 2.1).
        token, hint = (
            (tokens.refresh_token, "refresh_token")
            if tokens.refresh_token
            else (tokens.access_token, "access_token")
        )
        result = await self._endpoint.revoke(
            provider, client, token=token, token_type_hint=hint
        )
        if not result.revoked:
            logger.warning(
                "Revocation of %s at %s failed: %s",
                connection.id,
                provider.slug,
                result.reason,
            )
        return result.revoked, result.reason

    async def _begin(
        self,
        work: UnitOfWork,
        provider: Provider,
        connection: ProviderConnection,
        redirect_uri: str,
        extra_params: Mapping[str, str] | None,
    ) -> AuthorizationRequest:
        now = self._clock.now()
        state_value = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64) if provider.use_pkce else None
        state = AuthorizationState(
            id=new_id(),
            state_hash=hash_state(state_value),
            connection_id=connection.id,
            user_id=connection.user_id,
            provider_id=provider.id,
            redirect_uri=redirect_uri,
            code_verifier_encrypted=None,
            created_at=now,
            expires_at=now + AUTHORIZATION_TTL,
        )
        if verifier is not None:
            state.code_verifier_encrypted = self._cipher.encrypt(
                verifier.encode(), oauth_state_context(state.id)
            )
        await work.states.add(state)

        url = _authorization_url(provider, redirect_uri, state_value, verifier)
        if extra_params:
            url = _add_params(url, extra_params)
        return AuthorizationRequest(connection.id, url, state.expires_at)

    async def _claim_state(
        self,
        work: UnitOfWork,
        state_value: str,
        provider: Provider,
        redirect_uri: str,
        now: datetime,
    ) -> AuthorizationState:
        state = await work.states.find_by_hash(hash_state(state_value))
        problem = _state_problem(state, provider, redirect_uri, now)
        if problem is not None or state is None:
            logger.warning("Rejected an authorisation callback: %s", problem)
            raise InvalidStateError(f"{problem}; start the connection again.")
        if not await work.states.consume(state, now):
            raise InvalidStateError(
                "The state was used by another callback at the same moment; "
                "start the connection again."
            )
        return state

    def _open_verifier(self, state: AuthorizationState) -> str | None:
        if state.code_verifier_encrypted is None:
            return None
        context = oauth_state_context(state.id)
        return self._cipher.decrypt(state.code_verifier_encrypted, context).decode()

    async def _activate(
        self,
        connection_id: UUID,
        provider: Provider,
        outcome: TokenSuccess,
        now: datetime,
    ) -> ProviderConnection:
        tokens = outcome.token_set
        async with self._unit_of_work() as work:
            connection = await _require_connection(work, connection_id)
            before = connection.status
            credentials = seal_token_set(self._cipher, connection, tokens)
            connection.activate(
                credentials,
                now,
                next_refresh_at=next_refresh_at(tokens, now, provider.refresh_policy),
                refresh_token_expires_at=tokens.refresh_token_expires_at,
            )
            await work.connections.save(connection)
            kind = (
                EventType.CONNECTED
                if before is ConnectionStatus.PENDING
                else EventType.RECONNECTED
            )
            await _record(work, connection, kind, now, before, "user")
        logger.info("Connection %s is active (%s)", connection_id, kind.value)
        return connection

    async def _fail(self, connection_id: UUID, reason: str, now: datetime) -> None:
        async with self._unit_of_work() as work:
            connection = await _require_connection(work, connection_id)
            before = connection.status
            if before is ConnectionStatus.PENDING:
                connection.mark_failed(now, reason)
                await work.connections.save(connection)
                kind = EventType.CONNECT_FAILED
            else:
                # A failed reconnect keeps the status it had.
                kind = EventType.RECONNECT_FAILED
            await _record(work, connection, kind, now, before, "user", reason)
        logger.warning("Authorisation of %s failed: %s", connection_id, reason)


def _state_problem(
    state: AuthorizationState | None,
    provider: Provider,
    redirect_uri: str,
    now: datetime,
) -> str | None:
    if state is None:
        return "The state is unknown: it was never issued or has been cleaned up"
    if state.consumed_at is not None:
        return "The state was already used; each authorisation can complete once"
    if state.is_expired(now):
        return (
            f"The state expired at {state.expires_at.isoformat()}; authorisations "
            f"must complete within {int(AUTHORIZATION_TTL.total_seconds() // 60)} "
            "minutes"
        )
    if state.provider_id != provider.id:
        return f"The state was issued for another provider, not {provider.slug}"
    if state.redirect_uri != redirect_uri:
        return (
            f"The redirect URI {redirect_uri} differs from the one the flow "
            "started with"
        )
    return None


def _callback_reason(callback: AuthorizationCallback) -> str:
    if not callback.error:
        return "no authorization code in the callback"
    if callback.error_description:
        return f"{callback.error}: {callback.error_description[:300]}"
    return callback.error


def _authorization_url(
    provider: Provider, redirect_uri: str, state: str, verifier: str | None
) -> str:
    params: dict[str, str] = dict(provider.extra_authorize_params)
    if verifier is not None:
        params["code_challenge"] = create_s256_code_challenge(verifier)
        params["code_challenge_method"] = "S256"
    assert provider.authorization_url is not None
    assert provider.client_id is not None
    url: str = prepare_grant_uri(
        provider.authorization_url,
        provider.client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=" ".join(provider.scopes) or None,
        state=state,
        **params,
    )
    return url


def _add_params(url: str, params: Mapping[str, str]) -> str:
    from authlib.common.urls import add_params_to_uri

    result: str = add_params_to_uri(url, list(params.items()))
    return result


async def _require_provider(work: UnitOfWork, slug: str) -> Provider:
    provider = await work.providers.get_by_slug(slug)
    if provider is None:
        raise ProviderNotFoundError(slug)
    return provider


async def _oauth_provider(work: UnitOfWork, slug: str) -> Provider:
    provider = await _require_provider(work, slug)
    if provider.credential_type is not CredentialType.OAUTH2:
        raise InvalidProviderError(
            f"Provider {slug} uses {provider.credential_type.value} credentials, "
            "not OAuth 2.0; use the API key connect instead."
        )
    return provider


async def _require_connection(
    work: UnitOfWork, connection_id: UUID
) -> ProviderConnection:
    connection = await work.connections.find_by_id(connection_id)
    if connection is None:
        raise ConnectionNotFoundError(connection_id)
    return connection


async def _record(
    work: UnitOfWork,
    connection: ProviderConnection,
    kind: EventType,
    now: datetime,
    before: ConnectionStatus | None,
    actor: str,
    reason: str | None = None,
) -> None:
    await work.events.append(
        ConnectionEvent.record(
            id=new_id(),
            connection=connection,
            event_type=kind,
            occurred_at=now,
            status_before=None if before is None else before.value,
            reason=reason if reason is not None else connection.status_reason,
            actor=actor,
        )
    )
