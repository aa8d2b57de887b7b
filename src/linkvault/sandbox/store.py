"""In-memory state of the sandbox: grants, authorization codes, tokens, counters.

The store keeps tokens and codes only as SHA-256 hashes, so nothing in memory,
in a repr or in the admin API can be replayed. The server handles each request
in its own thread, so every read and write takes `SandboxStore.lock`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from linkvault.ids import new_id
from linkvault.sandbox.settings import SandboxSettings

logger = logging.getLogger(__name__)

#: Counter names that `SandboxStore.stats` always reports, zero included.
STAT_NAMES = (
    "authorizations",
    "access_denied",
    "tokens_issued",
    "refreshes",
    "reuse_detections",
    "code_reuse_detections",
    "revocations",
    "grants_revoked",
    "faults_served",
)


class CredentialState(Enum):
    """Whether an authorization code or refresh token can still be redeemed."""

    USABLE = "usable"
    USED = "used"
    REVOKED = "revoked"
    EXPIRED = "expired"


def hash_token(token: str) -> str:
    """Return the hex SHA-256 digest under which the store keeps a token or code."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _isoformat(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None

    return datetime.fromtimestamp(timestamp, UTC).isoformat()


@dataclass(eq=False)
class TokenRecord:
    """One token response: an access token and its refresh token, as hashes.

    Implements the parts of Authlib's `TokenMixin` that the grants, the
    revocation endpoint and the bearer token validator call.
    """

    access_token_hash: str
    refresh_token_hash: str | None
    grant: Grant
    issued_at: float
    access_token_expires_at: float
    refresh_token_expires_at: float | None
    clock: Callable[[], float] = field(repr=False)
    consumed: bool = False

    @property
    def user_id(self) -> str:
        """The user the grant belongs to."""
        return self.grant.user_id

    def check_client(self, client: Any) -> bool:
        """Return whether the token was issued to `client`."""
        return bool(client.get_client_id() == self.grant.client_id)

    def get_scope(self) -> str:
        """Return the scope of the grant."""
        return self.grant.scope

    def get_expires_in(self) -> int:
        """Return the access token lifetime in seconds."""
        return int(self.access_token_expires_at - self.issued_at)

    def get_user(self) -> str:
        """Return the user id of the grant."""
        return self.grant.user_id

    def is_expired(self) -> bool:
        """Return whether the access token has expired."""
        return self.clock() >= self.access_token_expires_at

    def is_revoked(self) -> bool:
        """Return whether the grant, and so this token, is revoked."""
        return self.grant.revoked


@dataclass(eq=False)
class Grant:
    """One user's authorization of one client, across refresh token rotations."""

    grant_id: str
    client_id: str
    user_id: str
    scope: str
    authorized_at: float
    revoked: bool = False
    revoked_reason: str | None = None
    refreshes: int = 0
    current: TokenRecord | None = field(default=None, repr=False)


@dataclass(eq=False)
class AuthorizationCodeRecord:
    """An issued authorization code, with what it was bound to.

    Implements Authlib's `AuthorizationCodeMixin`; `code_challenge` and
    `code_challenge_method` are the attributes that Authlib's PKCE extension reads.
    """

    client_id: str
    user_id: str
    scope: str
    redirect_uri: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    used: bool = False
    grant: Grant | None = None

    def get_redirect_uri(self) -> str | None:
        """Return the redirect URI of the authorization request, if it had one."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """Return the granted scope."""
        return self.scope


class SandboxStore:
    """Thread-safe in-memory state of one sandbox server.

    The clock is the wall clock plus an offset that the admin API can advance,
    so tests expire tokens without sleeping.
    """

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        #: Re-entrant, so a grant can hold it across a check, a redeem and a save.
        self.lock = threading.RLock()
        self._clock_offset = 0.0
        self._codes: dict[str, AuthorizationCodeRecord] = {}
        self._grants: dict[str, Grant] = {}
        self._access_tokens: dict[str, TokenRecord] = {}
        self._refresh_tokens: dict[str, TokenRecord] = {}
        self._counters: Counter[str] = Counter()

    def now(self) -> float:
        """Return the sandbox time in seconds since the epoch."""
        with self.lock:
            return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox clock forward and return the total offset in seconds."""
        with self.lock:
            self._clock_offset += seconds
            return self._clock_offset

    def reset(self) -> None:
        """Forget every grant, code, token, counter and clock offset."""
        with self.lock:
            self._clock_offset = 0.0
            self._codes.clear()
            self._grants.clear()
            self._access_tokens.clear()
            self._refresh_tokens.clear()
            self._counters.clear()

    def count(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the counter `name`."""
        with self.lock:
            self._counters[name] += amount

    def stats(self) -> dict[str, int]:
        """Return every counter and the number of active grants."""
        with self.lock:
            stats = {name: self._counters[name] for name in STAT_NAMES}
            stats.update(self._counters)
            stats["active_grants"] = sum(
                1 for grant in self._grants.values() if not grant.revoked
            )
            return stats

    def save_code(self, code: str, record: AuthorizationCodeRecord) -> None:
        """Store an authorization code under its hash."""
        with self.lock:
            self._codes[hash_token(code)] = record

    def find_code(self, code: str) -> AuthorizationCodeRecord | None:
        """Return the record of an authorization code, or None if unknown."""
        with self.lock:
            return self._codes.get(hash_token(code))

    def code_state(self, record: AuthorizationCodeRecord) -> CredentialState:
        """Return whether an authorization code can still be redeemed."""
        with self.lock:
            if record.used:
                return CredentialState.USED
            if self.now() >= record.expires_at:
                return CredentialState.EXPIRED
            return CredentialState.USABLE

    def mark_code_used(self, record: AuthorizationCodeRecord) -> None:
        """Mark an authorization code as redeemed."""
        with self.lock:
            record.used = True

    def report_code_reuse(self, record: AuthorizationCodeRecord) -> None:
        """Count a replayed authorization code and revoke the grant it created.

        Per RFC 6749 section 4.1.2, a server SHOULD revoke the tokens issued
        from a code that is used twice.
        """
        with self.lock:
            self._counters["code_reuse_detections"] += 1
            grant = record.grant

        logger.warning(
            "Authorization code reuse detected for user %s and client %s",
            record.user_id,
            record.client_id,
        )
        if grant is not None:
            self.revoke_grant(grant, reason="authorization code reuse")

    def save_token(
        self,
        token: Mapping[str, Any],
        *,
        client_id: str,
        user_id: str,
        grant: Grant | None = None,
        code: AuthorizationCodeRecord | None = None,
    ) -> TokenRecord:
        """Store an issued token response and make it the grant's current one.

        Without `grant`, this starts a new grant: the first token response of an
        authorization code, which is then linked to that grant.
        """
        with self.lock:
            now = self.now()
            if grant is None:
                grant = self._start_grant(client_id, user_id, str(token["scope"]), now)
            else:
                grant.refreshes += 1
            if code is not None:
                code.grant = grant

            record = self._build_record(token, grant, now)
            self._index(record)
            grant.current = record
            self._counters["tokens_issued"] += 1
            return record

    def _start_grant(
        self, client_id: str, user_id: str, scope: str, now: float
    ) -> Grant:
        grant = Grant(
            grant_id=str(new_id()),
            client_id=client_id,
            user_id=user_id,
            scope=scope,
            authorized_at=now,
        )
        self._grants[grant.grant_id] = grant
        logger.info("Grant %s started for user %s", grant.grant_id, user_id)
        return grant

    def _build_record(
        self, token: Mapping[str, Any], grant: Grant, now: float
    ) -> TokenRecord:
        refresh_token = token.get("refresh_token")
        return TokenRecord(
            access_token_hash=hash_token(token["access_token"]),
            refresh_token_hash=hash_token(refresh_token) if refresh_token else None,
            grant=grant,
            issued_at=now,
            access_token_expires_at=now + int(token["expires_in"]),
            refresh_token_expires_at=self._refresh_token_expiry(grant, now),
            clock=self.now,
        )

    def _refresh_token_expiry(self, grant: Grant, now: float) -> float | None:
        lifetime = self.settings.refresh_token_lifetime
        if lifetime is None:
            return None
        if self.settings.refresh_token_clock == "fixed":
            return grant.authorized_at + lifetime
        return now + lifetime

    def _index(self, record: TokenRecord) -> None:
        self._access_tokens[record.access_token_hash] = record
        if record.refresh_token_hash is not None:
            self._refresh_tokens[record.refresh_token_hash] = record

    def find_access_token(self, token: str) -> TokenRecord | None:
        """Return the record of an access token, or None if unknown."""
        with self.lock:
            return self._access_tokens.get(hash_token(token))

    def find_refresh_token(self, token: str) -> TokenRecord | None:
        """Return the record of a refresh token, or None if unknown."""
        with self.lock:
            return self._refresh_tokens.get(hash_token(token))

    def refresh_token_state(self, record: TokenRecord) -> CredentialState:
        """Return whether a refresh token can still be redeemed.

        A used refresh token reports USED even after its grant is revoked, so
        every replay of it counts as a reuse.
        """
        with self.lock:
            if record.consumed:
                return CredentialState.USED
            if record.grant.revoked:
                return CredentialState.REVOKED
            expires_at = record.refresh_token_expires_at
            if expires_at is not None and self.now() >= expires_at:
                return CredentialState.EXPIRED
            return CredentialState.USABLE

    def mark_refresh_token_used(self, record: TokenRecord) -> None:
        """Mark a refresh token as redeemed; a rotated token is never usable again."""
        with self.lock:
            record.consumed = True
            self._counters["refreshes"] += 1

    def report_refresh_token_reuse(self, record: TokenRecord) -> None:
        """Count a replayed refresh token and revoke every token of its grant."""
        with self.lock:
            self._counters["reuse_detections"] += 1

        logger.warning(
            "Refresh token reuse detected on grant %s of user %s",
            record.grant.grant_id,
            record.grant.user_id,
        )
        self.revoke_grant(record.grant, reason="refresh token reuse")

    def refresh_token_expires_in(self, record: TokenRecord) -> int | None:
        """Return the whole seconds from issue until a refresh token expires.

        Rounds down, so a client that trusts the value never redeems an
        expired refresh token.
        """
        if record.refresh_token_expires_at is None:
            return None

        # Rounding to milliseconds first keeps float noise in (t + lifetime) - t
        # from costing a whole second.
        remaining = round(record.refresh_token_expires_at - record.issued_at, 3)
        return max(0, math.floor(remaining))

    def revoke_grant(self, grant: Grant, *, reason: str) -> bool:
        """Revoke a grant with all its tokens; return False if already revoked."""
        with self.lock:
            if grant.revoked:
                return False
            grant.revoked = True
            grant.revoked_reason = reason
            self._counters["grants_revoked"] += 1

        logger.info("Grant %s revoked: %s", grant.grant_id, reason)
        return True

    def revoke_user(self, user_id: str) -> int:
        """Revoke every grant of a user and return how many were active."""
        with self.lock:
            grants = [
                grant for grant in self._grants.values() if grant.user_id == user_id
            ]
            return sum(
                self.revoke_grant(grant, reason="user revoked access")
                for grant in grants
            )

    def grant_reports(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Describe each grant, or each grant of one user, in issue order.

        `refresh_token_sha256` is the hex SHA-256 of the refresh token that the
        next refresh must present, or None once the grant is revoked.
        """
        with self.lock:
            grants = [
                grant
                for grant in self._grants.values()
                if user_id is None or grant.user_id == user_id
            ]
            return [self._report(grant) for grant in grants]

    def _report(self, grant: Grant) -> dict[str, Any]:
        current = None if grant.revoked else grant.current
        return {
            "grant_id": grant.grant_id,
            "user": grant.user_id,
            "client_id": grant.client_id,
            "scope": grant.scope,
            "active": not grant.revoked,
            "revoked_reason": grant.revoked_reason,
            "authorized_at": _isoformat(grant.authorized_at),
            "refreshes": grant.refreshes,
            "refresh_token_sha256": current.refresh_token_hash if current else None,
            "refresh_token_expires_at": _isoformat(
                current.refresh_token_expires_at if current else None
            ),
        }
