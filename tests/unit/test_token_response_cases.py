"""Every documented provider response, parsed with that provider's settings.

In the fixture files, a bare JSON object is a 200 JSON body and a bare string is
a 200 form-encoded body. An object with `status` and `body` gives the status, and
`content_type` where the body is not JSON. A refresh response is parsed with the
token set of the same file's `authorization_code` response as the previous one,
obtained two days earlier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from linkvault.domain.credentials import TokenSet
from linkvault.domain.token_response import (
    RefreshTokenChange,
    RefreshTokenClock,
    TokenErrorKind,
    TokenFailure,
    TokenOutcome,
    TokenResponseSettings,
    TokenSuccess,
    parse_token_response,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "token-responses"
AUTHORIZED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = AUTHORIZED_AT + timedelta(days=2)

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"

Change = RefreshTokenChange
Kind = TokenErrorKind


def seconds(value: int) -> timedelta:
    return timedelta(seconds=value)


@dataclass(frozen=True)
class Granted:
    """An expected success. Expiries are durations from the parse's `now`."""

    grant: str
    expires_in: timedelta | None
    refresh_expires_in: timedelta | None
    change: RefreshTokenChange
    scopes: tuple[str, ...]
    token_type: str = "Bearer"
    extras: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Rejected:
    """An expected failure of a refresh."""

    kind: TokenErrorKind
    error: str | None
    nested_error: str | None = None


@dataclass(frozen=True)
class ProviderTable:
    settings: TokenResponseSettings
    responses: dict[str, Granted | Rejected]


ATLASSIAN_SCOPES = ("read:jira-work", "write:jira-work", "offline_access")
DROPBOX_SCOPES = (
    "account_info.read",
    "files.content.read",
    "files.metadata.read",
)
DROPBOX_EXTRAS = frozenset({"account_id", "uid"})
FITBIT_SCOPES = ("activity", "heartrate", "profile", "sleep")
GOOGLE_SCOPES = ("https://www.googleapis.com/auth/drive.readonly", "openid")
HUBSPOT_SCOPES = (
    "oauth",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
)
MICROSOFT_SCOPES = ("User.Read", "Mail.Read", "openid", "profile", "email")
MICROSOFT_EXTRAS = frozenset({"ext_expires_in", "id_token"})
SALESFORCE_SCOPES = ("refresh_token", "api", "id")
SALESFORCE_EXTRAS = frozenset(
    {"signature", "id_token", "instance_url", "id", "issued_at"}
)
SLACK_SCOPES = ("chat:write", "channels:read")
SLACK_EXTRAS = frozenset(
    {
        "ok",
        "app_id",
        "authed_user",
        "bot_user_id",
        "team",
        "enterprise",
        "is_enterprise_install",
    }
)
SPOTIFY_SCOPES = ("user-read-private", "user-read-email")
XERO_SCOPES = (
    "openid",
    "profile",
    "email",
    "accounting.transactions",
    "offline_access",
)
ID_TOKEN = frozenset({"id_token"})

TABLE: dict[str, ProviderTable] = {
    "alpaca": ProviderTable(
        TokenResponseSettings(),
        {
            # No expires_in and no refresh token: the token never expires.
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                None,
                None,
                Change.ABSENT,
                ("account:write", "trading"),
            ),
        },
    ),
    "atlassian": ProviderTable(
        TokenResponseSettings(
            refresh_token_clock=RefreshTokenClock.SLIDING,
            refresh_token_lifetime=timedelta(days=90),
            refresh_token_max_lifetime=timedelta(days=365),
        ),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(3600),
                timedelta(days=90),
                Change.ISSUED,
                ATLASSIAN_SCOPES,
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(3600),
                timedelta(days=90),
                Change.ROTATED,
                ATLASSIAN_SCOPES,
            ),
            "refresh_error_expired": Rejected(Kind.REAUTH_REQUIRED, "invalid_grant"),
            # The engine distinguishes a dead token from a broken client by
            # whether other connections of the provider still refresh.
            "refresh_error_variants[0]": Rejected(
                Kind.CLIENT_MISCONFIGURED, "unauthorized_client"
            ),
        },
    ),
    "dropbox": ProviderTable(
        TokenResponseSettings(),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(14400),
                None,
                Change.ISSUED,
                DROPBOX_SCOPES,
                extras=DROPBOX_EXTRAS,
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(14400),
                None,
                Change.KEPT,
                DROPBOX_SCOPES,
                extras=DROPBOX_EXTRAS,
            ),
            "refresh_error_expired": Rejected(Kind.REAUTH_REQUIRED, "invalid_grant"),
            "refresh_error_variants[0]": Rejected(
                Kind.REAUTH_REQUIRED, "invalid_grant"
            ),
            # An API error envelope, not an OAuth error: nothing to classify.
            "api_call_with_expired_access_token": Rejected(Kind.TRANSIENT, None),
        },
    ),
    "fitbit": ProviderTable(
        TokenResponseSettings(
            error_code_fields=("error", "errors.0.errorType"),
            error_description_fields=("error_description", "errors.0.message"),
        ),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(28800),
                None,
                Change.ISSUED,
                FITBIT_SCOPES,
                extras=frozenset({"user_id"}),
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(28800),
                None,
                Change.ROTATED,
                FITBIT_SCOPES,
                extras=frozenset({"user_id"}),
            ),
            "refresh_error_expired": Rejected(Kind.REAUTH_REQUIRED, "invalid_grant"),
        },
    ),
    "github-apps": ProviderTable(
        TokenResponseSettings(reauth_codes=frozenset({"bad_refresh_token"})),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(28800),
                seconds(15811200),
                Change.ISSUED,
                (),
            ),
            "authorization_code_default_form_encoded": Granted(
                AUTHORIZATION_CODE,
                seconds(28800),
                seconds(15811200),
                Change.ISSUED,
                (),
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(28800),
                seconds(15811200),
                Change.ROTATED,
                (),
            ),
            "refresh_error_expired": Rejected(
                Kind.REAUTH_REQUIRED, "bad_refresh_token"
            ),
            "refresh_error_expired_form_encoded": Rejected(
                Kind.REAUTH_REQUIRED, "bad_refresh_token"
            ),
            "non_expiring_variant": Granted(
                AUTHORIZATION_CODE, None, None, Change.ABSENT, ()
            ),
        },
    ),
    "google": ProviderTable(
        TokenResponseSettings(),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(3599),
                None,
                Change.ISSUED,
                GOOGLE_SCOPES,
                extras=ID_TOKEN,
            ),
            "authorization_code_testing_mode": Granted(
                AUTHORIZATION_CODE,
                seconds(3599),
                seconds(604799),
                Change.ISSUED,
                ("https://www.googleapis.com/auth/gmail.readonly",),
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(3599),
                None,
                Change.KEPT,
                GOOGLE_SCOPES,
                extras=ID_TOKEN,
            ),
            "refresh_error_expired": Rejected(Kind.REAUTH_REQUIRED, "invalid_grant"),
            "refresh_error_variants[0]": Rejected(
                Kind.REAUTH_REQUIRED, "invalid_grant"
            ),
            "refresh_error_variants[1]": Rejected(
                Kind.REAUTH_REQUIRED, "invalid_grant"
            ),
        },
    ),
    "hubspot": ProviderTable(
        TokenResponseSettings(
            reauth_codes=frozenset({"BAD_REFRESH_TOKEN"}),
            error_code_fields=("error", "status"),
            error_description_fields=("error_description", "message"),
        ),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(1800),
                None,
                Change.ISSUED,
                HUBSPOT_SCOPES,
                extras=frozenset({"hub_id"}),
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(1800),
                None,
                Change.UNCHANGED,
                HUBSPOT_SCOPES,
                extras=frozenset({"hub_id"}),
            ),
            "refresh_error_expired": Rejected(Kind.REAUTH_REQUIRED, "invalid_grant"),
            "refresh_error_legacy": Rejected(Kind.REAUTH_REQUIRED, "BAD_REFRESH_TOKEN"),
            # An API error body: its `status` of "error" is an unknown code.
            "api_call_with_expired_access_token": Rejected(
                Kind.INVALID_REQUEST, "error"
            ),
        },
    ),
    "microsoft": ProviderTable(
        TokenResponseSettings(
            refresh_token_clock=RefreshTokenClock.SLIDING,
            refresh_token_lifetime=timedelta(days=90),
        ),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(4799),
                timedelta(days=90),
                Change.ISSUED,
                MICROSOFT_SCOPES,
                extras=MICROSOFT_EXTRAS,
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(3921),
                timedelta(days=90),
                Change.ROTATED,
                MICROSOFT_SCOPES,
                extras=MICROSOFT_EXTRAS,
            ),
            "refresh_error_expired": Rejected(Kind.REAUTH_REQUIRED, "invalid_grant"),
            # expires_in as a string wins over the absolute expires_on.
            "v1_endpoint_variant_string_numbers": Granted(
                AUTHORIZATION_CODE,
                seconds(3599),
                timedelta(days=90),
                Change.ISSUED,
                (),
                extras=frozenset({"ext_expires_in", "not_before", "resource"}),
            ),
        },
    ),
    "salesforce": ProviderTable(
        # No expires_in at all; two hours is Salesforce's default session timeout.
        TokenResponseSettings(assumed_lifetime=timedelta(hours=2)),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                timedelta(hours=2),
                None,
                Change.ISSUED,
                SALESFORCE_SCOPES,
                extras=SALESFORCE_EXTRAS,
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                timedelta(hours=2),
                None,
                Change.KEPT,
                SALESFORCE_SCOPES,
                extras=SALESFORCE_EXTRAS,
            ),
            "refresh_token_with_rotation_enabled": Granted(
                REFRESH_TOKEN,
                timedelta(hours=2),
                None,
                Change.ROTATED,
                SALESFORCE_SCOPES,
                extras=SALESFORCE_EXTRAS,
            ),
            "refresh_error_expired": Rejected(Kind.REAUTH_REQUIRED, "invalid_grant"),
            # A JSON array from an API call, not a token response.
            "api_call_with_expired_access_token": Rejected(Kind.TRANSIENT, None),
        },
    ),
    "schwab": ProviderTable(
        TokenResponseSettings(
            reauth_codes=frozenset(
                {"unsupported_token_type", "refresh_token_authentication_error"}
            ),
            assumed_lifetime=seconds(1800),
            refresh_token_clock=RefreshTokenClock.FIXED,
            refresh_token_lifetime=timedelta(days=7),
        ),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(1800),
                timedelta(days=7),
                Change.ISSUED,
                ("api",),
                extras=ID_TOKEN,
            ),
            # The 7-day clock runs from the authorisation two days earlier.
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(1800),
                timedelta(days=5),
                Change.UNCHANGED,
                ("api",),
                extras=ID_TOKEN,
            ),
            "refresh_error_expired": Rejected(
                Kind.REAUTH_REQUIRED,
                "unsupported_token_type",
                nested_error="refresh_token_authentication_error",
            ),
            "refresh_error_variants[0]": Rejected(
                Kind.CLIENT_MISCONFIGURED, "invalid_client"
            ),
            "refresh_error_variants[1]": Rejected(Kind.TRANSIENT, None),
        },
    ),
    "slack": ProviderTable(
        TokenResponseSettings(
            reauth_codes=frozenset({"invalid_refresh_token"}),
            revoked_codes=frozenset({"token_revoked"}),
            misconfigured_codes=frozenset({"invalid_client_id", "bad_client_secret"}),
            transient_codes=frozenset({"ratelimited"}),
        ),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(43200),
                None,
                Change.ISSUED,
                SLACK_SCOPES,
                token_type="bot",
                extras=SLACK_EXTRAS,
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(43200),
                None,
                Change.ROTATED,
                SLACK_SCOPES,
                token_type="bot",
                extras=SLACK_EXTRAS,
            ),
            "refresh_error_expired": Rejected(
                Kind.REAUTH_REQUIRED, "invalid_refresh_token"
            ),
            # An API-call code that the token endpoint does not send.
            "api_call_with_expired_access_token": Rejected(
                Kind.INVALID_REQUEST, "token_expired"
            ),
        },
    ),
    "spotify": ProviderTable(
        TokenResponseSettings(
            refresh_token_clock=RefreshTokenClock.FIXED,
            refresh_token_lifetime=seconds(15552000),
        ),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(3600),
                timedelta(days=180),
                Change.ISSUED,
                SPOTIFY_SCOPES,
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(3600),
                timedelta(days=178),
                Change.KEPT,
                SPOTIFY_SCOPES,
            ),
            "refresh_error_expired": Rejected(Kind.REAUTH_REQUIRED, "invalid_grant"),
            "refresh_error_variants[0]": Rejected(
                Kind.REAUTH_REQUIRED, "invalid_grant"
            ),
        },
    ),
    "xero": ProviderTable(
        TokenResponseSettings(
            refresh_token_clock=RefreshTokenClock.SLIDING,
            refresh_token_lifetime=timedelta(days=60),
        ),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(1800),
                timedelta(days=60),
                Change.ISSUED,
                XERO_SCOPES,
                extras=ID_TOKEN,
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(1800),
                timedelta(days=60),
                Change.ROTATED,
                XERO_SCOPES,
                extras=ID_TOKEN,
            ),
            "refresh_error_expired": Rejected(Kind.REAUTH_REQUIRED, "invalid_grant"),
        },
    ),
    "zendesk": ProviderTable(
        TokenResponseSettings(),
        {
            "authorization_code": Granted(
                AUTHORIZATION_CODE,
                seconds(1800),
                seconds(2592000),
                Change.ISSUED,
                ("read", "write"),
            ),
            "refresh_token": Granted(
                REFRESH_TOKEN,
                seconds(1800),
                seconds(2592000),
                Change.ROTATED,
                ("read", "write"),
            ),
            "legacy_non_expiring": Granted(
                AUTHORIZATION_CODE, None, None, Change.ABSENT, ("read", "write")
            ),
            "refresh_error_expired": Rejected(Kind.REAUTH_REQUIRED, "invalid_grant"),
        },
    ),
}


def load_responses(provider: str) -> dict[str, Any]:
    """Return the file's responses by name, one per list item, without nulls."""
    document = json.loads((FIXTURES / f"{provider}.json").read_text())
    responses: dict[str, Any] = {}
    for name, value in document["responses"].items():
        if isinstance(value, list):
            for index, item in enumerate(value):
                responses[f"{name}[{index}]"] = item
        elif value is not None:
            responses[name] = value
    return responses


def http_response(raw: Any) -> tuple[int, str, bytes]:
    """Turn one response of the file convention into status, type and body."""
    if isinstance(raw, str):
        return 200, "application/x-www-form-urlencoded", raw.encode()
    if isinstance(raw, dict) and {"status", "body"} <= raw.keys():
        body = raw["body"]
        content_type = raw.get("content_type", "application/json")
        if isinstance(body, str):
            return raw["status"], content_type, body.encode()
        return raw["status"], content_type, json.dumps(body).encode()
    return 200, "application/json", json.dumps(raw).encode()


def parse(
    provider: str, raw: Any, *, now: datetime, previous: TokenSet | None
) -> TokenOutcome:
    status, content_type, body = http_response(raw)
    return parse_token_response(
        status,
        content_type,
        body,
        now=now,
        previous=previous,
        settings=TABLE[provider].settings,
        authorized_at=None if previous is None else AUTHORIZED_AT,
    )


def first_token_set(provider: str) -> TokenSet:
    raw = load_responses(provider)["authorization_code"]
    outcome = parse(provider, raw, now=AUTHORIZED_AT, previous=None)
    assert isinstance(outcome, TokenSuccess)
    return outcome.token_set


@dataclass(frozen=True)
class Parsed:
    outcome: TokenOutcome
    now: datetime
    previous: TokenSet | None
    document: dict[str, Any]


def body_document(raw: Any) -> dict[str, Any]:
    """Return the fields of a response body, or {} when it has none."""
    if isinstance(raw, str):
        return dict(parse_qsl(raw, keep_blank_values=True))
    if isinstance(raw, dict) and {"status", "body"} <= raw.keys():
        return body_document(raw["body"])
    return raw if isinstance(raw, dict) else {}


def parse_case(provider: str, name: str) -> Parsed:
    """Parse one response as a first authorisation or as a refresh."""
    raw = load_responses(provider)[name]
    expected = TABLE[provider].responses[name]
    first = isinstance(expected, Granted) and expected.grant == AUTHORIZATION_CODE

    now = AUTHORIZED_AT if first else NOW
    previous = None if first else first_token_set(provider)
    outcome = parse(provider, raw, now=now, previous=previous)

    return Parsed(outcome, now, previous, body_document(raw))


def cases_of(kind: type[Granted] | type[Rejected]) -> list[Any]:
    return [
        pytest.param(provider, name, id=f"{provider}/{name}")
        for provider, table in TABLE.items()
        for name, expected in table.responses.items()
        if isinstance(expected, kind)
    ]


GRANTED = cases_of(Granted)
REJECTED = cases_of(Rejected)


def success(provider: str, name: str) -> tuple[TokenSuccess, Granted, Parsed]:
    parsed = parse_case(provider, name)
    expected = TABLE[provider].responses[name]
    assert isinstance(expected, Granted)
    assert isinstance(parsed.outcome, TokenSuccess), parsed.outcome
    return parsed.outcome, expected, parsed


def failure(provider: str, name: str) -> tuple[TokenFailure, Rejected, Parsed]:
    parsed = parse_case(provider, name)
    expected = TABLE[provider].responses[name]
    assert isinstance(expected, Rejected)
    assert isinstance(parsed.outcome, TokenFailure), parsed.outcome
    return parsed.outcome, expected, parsed


def test_every_fixture_file_has_table() -> None:
    files = {path.stem for path in FIXTURES.glob("*.json")}

    assert files == set(TABLE)


@pytest.mark.parametrize("provider", sorted(TABLE))
def test_every_response_has_expectation(provider: str) -> None:
    assert set(load_responses(provider)) == set(TABLE[provider].responses)


@pytest.mark.parametrize(("provider", "name"), GRANTED)
def test_access_token_expiry(provider: str, name: str) -> None:
    outcome, expected, parsed = success(provider, name)

    expires_at = outcome.token_set.expires_at
    if expected.expires_in is None:
        assert expires_at is None
    else:
        assert expires_at == parsed.now + expected.expires_in


@pytest.mark.parametrize(("provider", "name"), GRANTED)
def test_refresh_token_expiry(provider: str, name: str) -> None:
    outcome, expected, parsed = success(provider, name)

    expires_at = outcome.token_set.refresh_token_expires_at
    if expected.refresh_expires_in is None:
        assert expires_at is None
    else:
        assert expires_at == parsed.now + expected.refresh_expires_in


@pytest.mark.parametrize(("provider", "name"), GRANTED)
def test_refresh_token_change(provider: str, name: str) -> None:
    outcome, expected, _ = success(provider, name)

    assert outcome.refresh_token_change is expected.change


@pytest.mark.parametrize(("provider", "name"), GRANTED)
def test_refresh_token_value(provider: str, name: str) -> None:
    outcome, expected, parsed = success(provider, name)

    token = outcome.token_set.refresh_token
    previous = parsed.previous.refresh_token if parsed.previous else None
    if expected.change is Change.ABSENT:
        assert token is None
    elif expected.change is Change.KEPT:
        assert token == previous
    else:
        assert token == parsed.document["refresh_token"]


@pytest.mark.parametrize(("provider", "name"), GRANTED)
def test_access_token_taken(provider: str, name: str) -> None:
    outcome, _, parsed = success(provider, name)

    assert outcome.token_set.access_token == parsed.document["access_token"]


@pytest.mark.parametrize(("provider", "name"), GRANTED)
def test_scopes(provider: str, name: str) -> None:
    outcome, expected, _ = success(provider, name)

    assert outcome.token_set.scopes == expected.scopes


@pytest.mark.parametrize(("provider", "name"), GRANTED)
def test_token_type(provider: str, name: str) -> None:
    outcome, expected, _ = success(provider, name)

    assert outcome.token_set.token_type == expected.token_type


@pytest.mark.parametrize(("provider", "name"), GRANTED)
def test_extras_kept(provider: str, name: str) -> None:
    outcome, expected, parsed = success(provider, name)

    extras = outcome.token_set.extras
    assert set(extras) == expected.extras
    for key in expected.extras & set(parsed.document):
        assert extras[key] == parsed.document[key]


@pytest.mark.parametrize(("provider", "name"), REJECTED)
def test_error_kind(provider: str, name: str) -> None:
    outcome, expected, _ = failure(provider, name)

    assert outcome.kind is expected.kind


@pytest.mark.parametrize(("provider", "name"), REJECTED)
def test_error_code(provider: str, name: str) -> None:
    outcome, expected, _ = failure(provider, name)

    assert outcome.error == expected.error


@pytest.mark.parametrize(("provider", "name"), REJECTED)
def test_nested_error_code(provider: str, name: str) -> None:
    outcome, expected, _ = failure(provider, name)

    assert outcome.nested_error == expected.nested_error


@pytest.mark.parametrize(("provider", "name"), REJECTED)
def test_failure_repr_hides_tokens(provider: str, name: str) -> None:
    outcome, _, parsed = failure(provider, name)

    assert parsed.previous is not None
    assert parsed.previous.access_token not in repr(outcome)
    assert parsed.previous.refresh_token is not None
    assert parsed.previous.refresh_token not in repr(outcome)


def test_fitbit_description_redacts_echoed_token() -> None:
    outcome, _, _ = failure("fitbit", "refresh_error_expired")

    assert outcome.description is not None
    assert outcome.description.startswith("Refresh token invalid: ***.")
