"""Parse and classify token endpoint responses (RFC 6749 sections 5.1 and 5.2).

Providers bend RFC 6749 in many ways: errors sent with HTTP 200, error codes
outside the `error` field, form-encoded or HTML bodies, numbers sent as strings,
no `expires_in`, no `refresh_token` in a refresh response. `parse_token_response`
turns each of these into a `TokenSuccess` or a classified `TokenFailure` and never
raises for anything the provider sent. Provider facts that no response carries
come from `TokenResponseSettings`.

The body decides, not the status code. A body with an access token is a success
whatever the status, and once a body carries one, a malformed optional field is
ignored instead of failing the response, because a rotated refresh token that is
not stored is lost for good.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from linkvault.domain.credentials import TokenSet
from linkvault.domain.errors import InvalidProviderError
from linkvault.domain.timeutil import optional_aware, require_aware

__all__ = [
    "MAX_LIFETIME",
    "RefreshTokenChange",
    "RefreshTokenClock",
    "TokenErrorKind",
    "TokenFailure",
    "TokenOutcome",
    "TokenResponseSettings",
    "TokenSuccess",
    "parse_token_response",
]

logger = logging.getLogger(__name__)

# A stated lifetime beyond a year is taken for garbage (milliseconds sent as
# seconds, for example) and counts as missing. This applies to access tokens,
# refresh tokens and Retry-After alike.
MAX_LIFETIME = timedelta(days=365)

_MAX_DESCRIPTION_CHARS = 500
_REDACTED = "***"

_EXPIRES_IN_FIELDS = ("expires_in",)
_EXPIRES_AT_FIELDS = ("expires_at", "expires_on")
_REFRESH_EXPIRES_IN_FIELDS = (
    "refresh_token_expires_in",
    "refresh_expires_in",
    "x_refresh_token_expires_in",
)
_REFRESH_EXPIRES_AT_FIELDS = (
    "refresh_token_expires_at",
    "refresh_token_expires_on",
    "refresh_expires_at",
)
_SCOPE_FIELDS = ("scope", "scopes")
_SUBTYPE_FIELDS = ("error_subtype", "suberror")

# Fields that become TokenSet attributes; every other field goes to `extras`.
_TOKEN_SET_FIELDS = frozenset(
    {
        "access_token",
        "token_type",
        "refresh_token",
        *_EXPIRES_IN_FIELDS,
        *_EXPIRES_AT_FIELDS,
        *_REFRESH_EXPIRES_IN_FIELDS,
        *_REFRESH_EXPIRES_AT_FIELDS,
        *_SCOPE_FIELDS,
    }
)

# Token types whose registered spelling is restored (RFC 6750, RFC 9449). Other
# types ("mac", "N_A", Slack's "bot") are kept as the provider sent them.
_TOKEN_TYPE_SPELLINGS = {"bearer": "Bearer", "dpop": "DPoP"}

# 408, 425 and 429 mean "try again later" (RFC 9110, RFC 8470, RFC 6585).
_RETRY_LATER_STATUSES = frozenset({408, 425, 429})

_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "text/plain"})

# An epoch value above this is in milliseconds: as seconds it is after year 5000.
_EPOCH_MILLISECONDS_FROM = 100_000_000_000


class RefreshTokenClock(StrEnum):
    """Rule by which a provider's refresh token expires."""

    # Fixed from the interactive authorisation (Schwab: 7 days, not extended).
    FIXED = "fixed"
    # Extended by each successful refresh.
    SLIDING = "sliding"
    # Read from the token response (`refresh_token_expires_in` and variants).
    RESPONSE = "response"


class TokenErrorKind(StrEnum):
    """Class of a token endpoint response that carried no usable access token."""

    # The grant is dead (`invalid_grant` or a mapped code), so the user must
    # authorise again.
    REAUTH_REQUIRED = "reauth_required"
    # The provider states that the grant was revoked. Only mapped codes get here.
    REVOKED = "revoked"
    # The client's registration or setup is wrong: `invalid_client`,
    # `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`, mapped codes.
    CLIENT_MISCONFIGURED = "client_misconfigured"
    # `invalid_request`, or an error code that neither RFC 6749 nor the
    # settings classify. It blames neither the grant nor the client.
    INVALID_REQUEST = "invalid_request"
    # Worth retrying later: 408, 425, 429, 5xx, mapped codes, and bodies with
    # neither an access token nor an error code (HTML, empty, oversized).
    TRANSIENT = "transient"


class RefreshTokenChange(StrEnum):
    """Effect of a successful response on the refresh token."""

    # A refresh token where the previous token set had none.
    ISSUED = "issued"
    # A new value that replaces the previous one, which may now be dead.
    ROTATED = "rotated"
    # The response repeated the previous value.
    UNCHANGED = "unchanged"
    # The response had none, so the previous one is kept (RFC 6749 section 6).
    KEPT = "kept"
    # No refresh token before or now.
    ABSENT = "absent"


_CODE_SET_FIELDS = {
    "reauth_codes": TokenErrorKind.REAUTH_REQUIRED,
    "revoked_codes": TokenErrorKind.REVOKED,
    "misconfigured_codes": TokenErrorKind.CLIENT_MISCONFIGURED,
    "transient_codes": TokenErrorKind.TRANSIENT,
}


@dataclass(frozen=True, slots=True)
class TokenResponseSettings:
    """Per-provider facts about token responses that no response carries.

    The defaults follow RFC 6749: the error code is the `error` field, only the
    codes of section 5.2 are classified, and the refresh token's expiry is read
    from the response. Error codes compare case-insensitively, and a mapped code
    overrides the RFC 6749 class of the same code.
    """

    # Codes that mean the user must authorise again (GitHub `bad_refresh_token`).
    reauth_codes: frozenset[str] = frozenset()
    # Codes that mean the grant was revoked (Slack `token_revoked`).
    revoked_codes: frozenset[str] = frozenset()
    # Codes that mean the client's setup is wrong (Slack `bad_client_secret`).
    misconfigured_codes: frozenset[str] = frozenset()
    # Codes that mean "try again later" (Slack `ratelimited`).
    transient_codes: frozenset[str] = frozenset()
    # Dotted paths, tried in order, to the error code and its description. A
    # number indexes a list, as in Fitbit's "errors.0.errorType".
    error_code_fields: tuple[str, ...] = ("error",)
    error_description_fields: tuple[str, ...] = ("error_description",)
    # Access-token lifetime assumed when a response has a refresh token but no
    # usable expiry, so that the refresh token is still exercised.
    assumed_lifetime: timedelta = timedelta(hours=1)
    refresh_token_clock: RefreshTokenClock = RefreshTokenClock.RESPONSE
    # FIXED counts it from the first authorisation and SLIDING from each
    # response. RESPONSE uses it for a new refresh token whose response states
    # no expiry.
    refresh_token_lifetime: timedelta | None = None
    # Cap from the first authorisation that refreshing never extends, on top of
    # any clock (Atlassian: 365 days beside a sliding 90 days).
    refresh_token_max_lifetime: timedelta | None = None
    # GitHub and Slack separate scopes with commas. RFC 6749 allows a comma
    # inside a scope token, so turn this off for a provider that uses one.
    split_scopes_on_commas: bool = True
    # Larger bodies are not parsed and count as transient failures.
    max_body_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        for name in _CODE_SET_FIELDS:
            codes = frozenset(code.casefold() for code in getattr(self, name))
            object.__setattr__(self, name, codes)
        clock = RefreshTokenClock(self.refresh_token_clock)
        object.__setattr__(self, "refresh_token_clock", clock)

        self._check_codes_are_mapped_once()
        self._check_lifetimes()
        if not self.error_code_fields:
            raise InvalidProviderError(
                "error_code_fields is empty, so no error code could be found. "
                "List at least one field, such as 'error'."
            )
        if self.max_body_bytes <= 0:
            raise InvalidProviderError(
                f"max_body_bytes={self.max_body_bytes} must be positive."
            )

    def mapped_kind(self, code: str) -> TokenErrorKind | None:
        """Return the class that these settings give `code`, or None."""
        folded = code.casefold()
        for name, kind in _CODE_SET_FIELDS.items():
            if folded in getattr(self, name):
                return kind
        return None

    def _check_codes_are_mapped_once(self) -> None:
        seen: dict[str, str] = {}
        for name in _CODE_SET_FIELDS:
            for code in getattr(self, name):
                if code in seen:
                    raise InvalidProviderError(
                        f"Error code {code!r} is in both {seen[code]} and {name}. "
                        "Keep it in one of them."
                    )
                seen[code] = name

    def _check_lifetimes(self) -> None:
        if not timedelta(0) < self.assumed_lifetime <= MAX_LIFETIME:
            raise InvalidProviderError(
                f"assumed_lifetime {self.assumed_lifetime} must be positive and "
                "at most a year."
            )
        for name in ("refresh_token_lifetime", "refresh_token_max_lifetime"):
            value = getattr(self, name)
            if value is not None and value <= timedelta(0):
                raise InvalidProviderError(
                    f"{name} {value} must be positive, or None when unknown."
                )
        needs_lifetime = self.refresh_token_clock is not RefreshTokenClock.RESPONSE
        if needs_lifetime and self.refresh_token_lifetime is None:
            raise InvalidProviderError(
                f"refresh_token_clock {self.refresh_token_clock.value!r} needs "
                "refresh_token_lifetime. Set it, or use the 'response' clock."
            )


# RFC 6749 section 5.2, plus two section 4.1.2.1 codes that some token
# endpoints send as well.
_RFC_6749_KINDS = {
    "invalid_grant": TokenErrorKind.REAUTH_REQUIRED,
    "invalid_client": TokenErrorKind.CLIENT_MISCONFIGURED,
    "unauthorized_client": TokenErrorKind.CLIENT_MISCONFIGURED,
    "unsupported_grant_type": TokenErrorKind.CLIENT_MISCONFIGURED,
    "invalid_scope": TokenErrorKind.CLIENT_MISCONFIGURED,
    "invalid_request": TokenErrorKind.INVALID_REQUEST,
    "server_error": TokenErrorKind.TRANSIENT,
    "temporarily_unavailable": TokenErrorKind.TRANSIENT,
}


@dataclass(frozen=True, slots=True)
class TokenSuccess:
    """A response that carried an access token, as the token set to store."""

    token_set: TokenSet
    refresh_token_change: RefreshTokenChange
    status_code: int = 200


@dataclass(frozen=True, slots=True)
class TokenFailure:
    """A response without a usable access token, classified by `kind`.

    Every token value passed to the parser (the previous token set and
    `redact`) is replaced by `***` in the text fields, so the repr is safe to
    log. The raw body is never kept.
    """

    kind: TokenErrorKind
    status_code: int
    # The provider's error code, from the first of the settings' code fields.
    error: str | None = None
    description: str | None = None
    # A code found in a JSON document inside the description (Schwab nests
    # `refresh_token_authentication_error` there).
    nested_error: str | None = None
    error_uri: str | None = None
    # From the Retry-After header, whatever the kind.
    retry_after: timedelta | None = None

    @property
    def reason(self) -> str:
        """One line for logs and events: code, status and description."""
        head = f"HTTP {self.status_code}"
        if self.error:
            head = f"{self.error} ({head})"
        if self.description:
            return f"{head}: {self.description}"
        return head


TokenOutcome: TypeAlias = TokenSuccess | TokenFailure

_Document: TypeAlias = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Unreadable:
    reason: str


def parse_token_response(
    status_code: int,
    content_type: str | None,
    body: bytes,
    *,
    now: datetime,
    previous: TokenSet | None,
    settings: TokenResponseSettings,
    authorized_at: datetime | None = None,
    retry_after: str | None = None,
    redact: Collection[str] = (),
) -> TokenOutcome:
    """Parse a token endpoint response into a token set or a classified failure.

    Args:
        status_code: HTTP status of the response.
        content_type: The Content-Type header, or None when it is missing. JSON
            and form-encoded bodies are recognised even when it is wrong.
        body: The raw body.
        now: When the request was sent. Relative lifetimes count from it, so
            network latency shortens them instead of stretching them.
        previous: The token set whose refresh token was redeemed, or None for a
            first authorisation. A refresh response inherits its refresh token,
            scopes and extras where it leaves them out.
        settings: The provider's facts.
        authorized_at: When the user authorised the grant. Fixed refresh-token
            clocks and `refresh_token_max_lifetime` count from it. It defaults
            to `now` when `previous` is None.
        retry_after: The Retry-After header, in seconds or as an HTTP date.
        redact: Other secrets the request sent (authorization code, PKCE code
            verifier, client secret) to hide from error descriptions.

    Returns:
        A `TokenSuccess` when the body has an access token, else a `TokenFailure`.

    Raises:
        ValueError: `now` or `authorized_at` has no time zone.
    """
    now = require_aware(now, "now")
    authorized_at = optional_aware(authorized_at, "authorized_at")

    document = _read_document(content_type, body, settings.max_body_bytes)
    if isinstance(document, dict):
        access_token = _non_empty_string(document.get("access_token"))
        if access_token is not None:
            return _success(
                access_token,
                document,
                status_code,
                now=now,
                previous=previous,
                settings=settings,
                authorized_at=authorized_at,
            )

    secrets = _secrets(previous, redact)
    delay = _parse_retry_after(retry_after, now)

    return _failure(status_code, document, settings, secrets, delay)


def _success(
    access_token: str,
    document: _Document,
    status_code: int,
    *,
    now: datetime,
    previous: TokenSet | None,
    settings: TokenResponseSettings,
    authorized_at: datetime | None,
) -> TokenSuccess:
    refresh_token, change = _refresh_token(document, previous)
    expires_at = _access_token_expiry(document, now, refresh_token, settings)

    refresh_token_expires_at = None
    if refresh_token is not None:
        start = authorized_at
        if start is None and previous is None:
            start = now
        refresh_token_expires_at = _refresh_token_expiry(
            document, now, start, previous, settings, change
        )

    token_set = TokenSet(
        access_token=access_token,
        token_type=_token_type(document.get("token_type")),
        refresh_token=refresh_token,
        expires_at=expires_at,
        refresh_token_expires_at=refresh_token_expires_at,
        scopes=_scopes(document, previous, settings),
        extras=_extras(document, previous),
    )

    return TokenSuccess(token_set, change, status_code)


def _refresh_token(
    document: _Document, previous: TokenSet | None
) -> tuple[str | None, RefreshTokenChange]:
    returned = _non_empty_string(document.get("refresh_token"))
    earlier = previous.refresh_token if previous is not None else None
    if returned is None:
        if earlier is None:
            return None, RefreshTokenChange.ABSENT
        return earlier, RefreshTokenChange.KEPT
    if earlier is None:
        return returned, RefreshTokenChange.ISSUED
    if returned == earlier:
        return returned, RefreshTokenChange.UNCHANGED
    return returned, RefreshTokenChange.ROTATED


def _access_token_expiry(
    document: _Document,
    now: datetime,
    refresh_token: str | None,
    settings: TokenResponseSettings,
) -> datetime | None:
    stated = _stated_expiry(document, now, _EXPIRES_IN_FIELDS, _EXPIRES_AT_FIELDS)
    if stated is not None:
        return stated

    # Without a refresh token there is nothing to renew it with, so an unstated
    # expiry means the access token lives until it is revoked.
    if refresh_token is None:
        return None
    return now + settings.assumed_lifetime


def _refresh_token_expiry(
    document: _Document,
    now: datetime,
    start: datetime | None,
    previous: TokenSet | None,
    settings: TokenResponseSettings,
    change: RefreshTokenChange,
) -> datetime | None:
    expiry = _stated_expiry(
        document, now, _REFRESH_EXPIRES_IN_FIELDS, _REFRESH_EXPIRES_AT_FIELDS
    )
    if expiry is None:
        expiry = _clock_expiry(now, start, previous, settings, change)

    cap = settings.refresh_token_max_lifetime
    if cap is None or start is None:
        return expiry
    if expiry is None:
        return start + cap
    return min(expiry, start + cap)


def _clock_expiry(
    now: datetime,
    start: datetime | None,
    previous: TokenSet | None,
    settings: TokenResponseSettings,
    change: RefreshTokenChange,
) -> datetime | None:
    lifetime = settings.refresh_token_lifetime
    earlier = previous.refresh_token_expires_at if previous is not None else None
    clock = settings.refresh_token_clock

    if clock is RefreshTokenClock.SLIDING and lifetime is not None:
        return now + lifetime
    if clock is RefreshTokenClock.FIXED and lifetime is not None:
        if start is not None:
            return start + lifetime
        # NOTE: the previous expiry replaces a missing authorized_at. Without
        # either, the refresh token's expiry stays unknown.
        if earlier is None:
            logger.warning(
                "The fixed refresh-token clock needs authorized_at, which is "
                "missing, so the refresh token's expiry is unknown."
            )
        return earlier

    if change in (RefreshTokenChange.KEPT, RefreshTokenChange.UNCHANGED):
        return earlier
    if lifetime is not None:
        return now + lifetime
    return None


def _stated_expiry(
    document: _Document,
    now: datetime,
    relative_fields: tuple[str, ...],
    absolute_fields: tuple[str, ...],
) -> datetime | None:
    for name in relative_fields:
        seconds = _number(document.get(name))
        if seconds is None:
            continue
        if 0 < seconds <= MAX_LIFETIME.total_seconds():
            return now + timedelta(seconds=seconds)
        logger.debug("Ignored %s=%r: outside 0 s to 1 year.", name, seconds)

    # An absolute expiry counts only when no relative one is usable.
    for name in absolute_fields:
        moment = _moment(document.get(name))
        if moment is None:
            continue
        if now < moment <= now + MAX_LIFETIME:
            return moment
        logger.debug("Ignored %s=%s: not within a year from now.", name, moment)
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, int | float | str):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _moment(value: object) -> datetime | None:
    """Read an epoch time in seconds or milliseconds, or an ISO 8601 string."""
    seconds = _number(value)
    if seconds is not None:
        if abs(seconds) >= _EPOCH_MILLISECONDS_FROM:
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None

    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        # A time without an offset from a token endpoint is UTC in practice.
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _token_type(value: object) -> str:
    # RFC 6749 requires token_type, so a response without one is assumed to
    # carry the usual bearer token.
    text = _non_empty_string(value)
    if text is None:
        return "Bearer"
    return _TOKEN_TYPE_SPELLINGS.get(text.casefold(), text)


def _scopes(
    document: _Document, previous: TokenSet | None, settings: TokenResponseSettings
) -> tuple[str, ...]:
    for name in _SCOPE_FIELDS:
        scopes = _split_scopes(document.get(name), settings.split_scopes_on_commas)
        if scopes is not None:
            return scopes

    # RFC 6749 section 5.1: an omitted scope is the scope that was requested,
    # which for a refresh is the scope already granted.
    return previous.scopes if previous is not None else ()


def _split_scopes(value: object, on_commas: bool) -> tuple[str, ...] | None:
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list):
        items = [item for item in value if isinstance(item, str)]
    else:
        return None

    separator = r"[\s,]+" if on_commas else r"\s+"
    scopes = [scope for item in items for scope in re.split(separator, item)]

    return tuple(dict.fromkeys(scope for scope in scopes if scope))


def _extras(document: _Document, previous: TokenSet | None) -> dict[str, Any]:
    # Refresh responses often leave out account fields that the authorisation
    # returned (Dropbox `account_id`, Salesforce `id_token`), so they are kept.
    extras = dict(previous.extras) if previous is not None else {}
    for name, value in document.items():
        if name not in _TOKEN_SET_FIELDS:
            extras[name] = value
    return extras


def _failure(
    status_code: int,
    document: _Document | _Unreadable,
    settings: TokenResponseSettings,
    secrets: tuple[str, ...],
    retry_after: timedelta | None,
) -> TokenFailure:
    if isinstance(document, _Unreadable):
        logger.debug("Token endpoint response unreadable: %s", document.reason)
        return TokenFailure(
            TokenErrorKind.TRANSIENT,
            status_code,
            description=document.reason,
            retry_after=retry_after,
        )

    code = _first_string(document, settings.error_code_fields)
    description = _first_string(document, settings.error_description_fields)
    nested = _nested_error_code(description) if description else None
    subtype = _first_string(document, _SUBTYPE_FIELDS)

    codes = [value for value in (code, nested, subtype) if value is not None]
    kind = _classify(status_code, codes, settings)
    if not codes and description is None:
        description = "the body has neither an access token nor an error code"

    return TokenFailure(
        kind,
        status_code,
        error=_safe_text(code, secrets),
        description=_safe_text(description, secrets),
        nested_error=_safe_text(nested, secrets),
        error_uri=_safe_text(_first_string(document, ("error_uri",)), secrets),
        retry_after=retry_after,
    )


def _classify(
    status_code: int, codes: list[str], settings: TokenResponseSettings
) -> TokenErrorKind:
    # A rate limit or server error never ends a connection, whatever its body
    # contains, because retrying costs little and the failure budget bounds it.
    if status_code in _RETRY_LATER_STATUSES or status_code >= 500:
        return TokenErrorKind.TRANSIENT
    if not codes:
        return TokenErrorKind.TRANSIENT

    for code in codes:
        mapped = settings.mapped_kind(code)
        if mapped is not None:
            return mapped
    for code in codes:
        standard = _RFC_6749_KINDS.get(code.casefold())
        if standard is not None:
            return standard
    return TokenErrorKind.INVALID_REQUEST


def _first_string(document: _Document, paths: tuple[str, ...]) -> str | None:
    for path in paths:
        value = _lookup(document, path)
        text = _non_empty_string(value)
        if text is not None:
            return text
    return None


def _lookup(document: _Document, path: str) -> object:
    value: object = document
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdecimal() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _nested_error_code(description: str) -> str | None:
    """Find the `error` of a JSON document serialised inside a description."""
    decoder = json.JSONDecoder()
    # Only the first object and the first string literal are tried, so a long
    # description costs two decodes, not one per quote.
    starts = {description.find("{"), description.find('"')} - {-1}
    for start in sorted(starts):
        try:
            value, _ = decoder.raw_decode(description, start)
        except ValueError:
            continue
        if isinstance(value, str):
            value = _parse_json_object(value)
        if isinstance(value, dict):
            return _non_empty_string(value.get("error"))
    return None


def _secrets(previous: TokenSet | None, redact: Collection[str]) -> tuple[str, ...]:
    values = set(redact)
    if previous is not None:
        values.add(previous.access_token)
        if previous.refresh_token:
            values.add(previous.refresh_token)
    # Longest first, so a secret that contains another is replaced whole.
    return tuple(sorted((value for value in values if value), key=len, reverse=True))


def _safe_text(text: str | None, secrets: tuple[str, ...]) -> str | None:
    """Hide `secrets` in provider text and make it one line of bounded length."""
    if text is None:
        return None
    # Redact before shortening, so that no secret survives cut in half.
    for secret in secrets:
        text = text.replace(secret, _REDACTED)

    # Control characters and line breaks from the provider would let it forge
    # extra log lines.
    printable = "".join(char if char.isprintable() else " " for char in text)
    line = " ".join(printable.split())
    if len(line) <= _MAX_DESCRIPTION_CHARS:
        return line
    return line[:_MAX_DESCRIPTION_CHARS] + "..."


def _parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Parse Retry-After as delay seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    value = value.strip()

    if value.isascii() and value.isdigit():
        seconds = min(int(value), int(MAX_LIFETIME.total_seconds()) + 1)
        delay = timedelta(seconds=seconds)
    else:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delay = max(moment - now, timedelta(0))

    return delay if delay <= MAX_LIFETIME else None


def _read_document(
    content_type: str | None, body: bytes, max_body_bytes: int
) -> _Document | _Unreadable:
    if len(body) > max_body_bytes:
        return _Unreadable(
            f"the body has {len(body)} bytes, more than the {max_body_bytes}-byte limit"
        )
    media_type, charset = _media_type(content_type)

    text = _decode(body, charset)
    if text is None:
        return _Unreadable(f"the {media_type} body is not valid text")
    if not text.strip():
        return _Unreadable("the body is empty")

    for parse in _parsers_for(media_type):
        document = parse(text)
        if document is not None:
            return document
    return _Unreadable(
        f"the {media_type} body is neither a JSON object nor form-encoded"
    )


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "untyped", None
    header = Message()
    header["Content-Type"] = content_type
    return header.get_content_type(), header.get_content_charset()


def _decode(body: bytes, charset: str | None) -> str | None:
    # JSON is UTF-8 (RFC 8259 section 8.1). utf-8-sig also drops a byte order mark.
    encoding = charset if charset and charset != "utf-8" else "utf-8-sig"
    try:
        return body.decode(encoding)
    except LookupError:
        return _decode(body, None) if charset else None
    except ValueError:
        # UnicodeDecodeError, or UnicodeError from codecs such as idna.
        return None


def _parsers_for(media_type: str) -> tuple[Callable[[str], _Document | None], ...]:
    # Both parsers always run, in the declared type's order, because some
    # providers label form bodies as JSON or text/html and the other way round.
    if media_type in _FORM_TYPES:
        return _parse_form, _parse_json_object
    return _parse_json_object, _parse_form


def _parse_json_object(text: str) -> _Document | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _parse_form(text: str) -> _Document | None:
    text = text.strip()
    # Markup with one attribute would otherwise parse as a single form field.
    if text.startswith("<"):
        return None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    return dict(pairs) if pairs else None


def _non_empty_string(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    return None
