"""Edge cases of token endpoint response parsing, one behaviour per test."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from linkvault.domain.credentials import TokenSet
from linkvault.domain.errors import InvalidProviderError
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

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ASSUMED = timedelta(minutes=10)
SETTINGS = TokenResponseSettings(assumed_lifetime=ASSUMED)
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

PREVIOUS = TokenSet(
    access_token="old-access-token-value",
    refresh_token="old-refresh-token-value",
    expires_at=NOW,
    refresh_token_expires_at=NOW + timedelta(days=30),
    scopes=("read", "write"),
    extras={"account_id": "acct-1", "instance_url": "https://old.example.test"},
)


def respond(
    body: dict[str, Any] | list[Any] | str | bytes,
    *,
    status: int = 200,
    content_type: str | None = JSON,
    previous: TokenSet | None = None,
    settings: TokenResponseSettings = SETTINGS,
    authorized_at: datetime | None = None,
    retry_after: str | None = None,
    redact: tuple[str, ...] = (),
) -> TokenOutcome:
    if isinstance(body, dict | list):
        raw = json.dumps(body).encode()
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = body
    return parse_token_response(
        status,
        content_type,
        raw,
        now=NOW,
        previous=previous,
        settings=settings,
        authorized_at=authorized_at,
        retry_after=retry_after,
        redact=redact,
    )


def granted(body: dict[str, Any] | str | bytes, **options: Any) -> TokenSuccess:
    outcome = respond(body, **options)
    assert isinstance(outcome, TokenSuccess), outcome
    return outcome


def failed(
    body: dict[str, Any] | list[Any] | str | bytes, **options: Any
) -> TokenFailure:
    outcome = respond(body, **options)
    assert isinstance(outcome, TokenFailure), outcome
    return outcome


def token(**fields: Any) -> dict[str, Any]:
    return {"access_token": "new-access-token-value", **fields}


# Access-token expiry


def test_expires_in_as_string() -> None:
    outcome = granted(token(expires_in="3600"))

    assert outcome.token_set.expires_at == NOW + timedelta(hours=1)


def test_expires_in_as_float() -> None:
    outcome = granted(token(expires_in=3599.5))

    assert outcome.token_set.expires_at == NOW + timedelta(seconds=3599.5)


def test_expires_in_of_one_year_accepted() -> None:
    outcome = granted(token(expires_in=365 * 86400))

    assert outcome.token_set.expires_at == NOW + timedelta(days=365)


UNUSABLE_EXPIRES_IN = [
    0,
    -5,
    "0",
    "-60",
    365 * 86400 + 1,
    "soon",
    "",
    None,
    True,
    "NaN",
]


@pytest.mark.parametrize("expires_in", UNUSABLE_EXPIRES_IN)
def test_unusable_expires_in_assumes_lifetime(expires_in: object) -> None:
    outcome = granted(token(expires_in=expires_in, refresh_token="r1"))

    assert outcome.token_set.expires_at == NOW + ASSUMED


@pytest.mark.parametrize("expires_in", UNUSABLE_EXPIRES_IN)
def test_unusable_expires_in_never_expires(expires_in: object) -> None:
    outcome = granted(token(expires_in=expires_in))

    assert outcome.token_set.expires_at is None


def test_missing_expires_in_assumes_lifetime() -> None:
    outcome = granted(token(refresh_token="r1"))

    assert outcome.token_set.expires_at == NOW + ASSUMED


def test_kept_refresh_token_assumes_lifetime() -> None:
    outcome = granted(token(), previous=PREVIOUS)

    assert outcome.token_set.expires_at == NOW + ASSUMED


def test_missing_expiry_without_refresh_token() -> None:
    outcome = granted(token())

    assert outcome.token_set.expires_at is None


IN_TWO_HOURS = NOW + timedelta(hours=2)
ABSOLUTE_EXPIRIES = [
    ("expires_at", int(IN_TWO_HOURS.timestamp())),
    ("expires_at", str(int(IN_TWO_HOURS.timestamp()))),
    ("expires_at", int(IN_TWO_HOURS.timestamp()) * 1000),
    ("expires_at", "2026-03-01T14:00:00Z"),
    ("expires_at", "2026-03-01T15:00:00+01:00"),
    ("expires_at", "2026-03-01T14:00:00"),
    ("expires_on", str(int(IN_TWO_HOURS.timestamp()))),
]


@pytest.mark.parametrize(("name", "value"), ABSOLUTE_EXPIRIES)
def test_absolute_expiry_without_expires_in(name: str, value: object) -> None:
    outcome = granted(token(**{name: value}))

    assert outcome.token_set.expires_at == IN_TWO_HOURS


def test_absolute_expiry_ignored_beside_expires_in() -> None:
    expires_at = int(IN_TWO_HOURS.timestamp())

    outcome = granted(token(expires_in=600, expires_at=expires_at))

    assert outcome.token_set.expires_at == NOW + timedelta(seconds=600)


def test_absolute_expiry_used_beside_zero_expires_in() -> None:
    expires_at = int(IN_TWO_HOURS.timestamp())

    outcome = granted(token(expires_in=0, expires_at=expires_at))

    assert outcome.token_set.expires_at == IN_TWO_HOURS


@pytest.mark.parametrize("offset", [timedelta(hours=-1), timedelta(days=400)])
def test_absolute_expiry_out_of_range(offset: timedelta) -> None:
    expires_at = int((NOW + offset).timestamp())

    outcome = granted(token(expires_at=expires_at, refresh_token="r1"))

    assert outcome.token_set.expires_at == NOW + ASSUMED


EXTREME_VALUES = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    10**400,
    -(10**20),
    1e308,
    "1e999",
    "2026-13-45",
    [],
    {},
]
EXPIRY_FIELDS = ["expires_in", "expires_at", "refresh_token_expires_at"]


@pytest.mark.parametrize("value", EXTREME_VALUES)
@pytest.mark.parametrize("name", EXPIRY_FIELDS)
def test_extreme_expiry_counts_as_missing(name: str, value: object) -> None:
    outcome = granted(token(refresh_token="r1", **{name: value}))

    assert outcome.token_set.expires_at == NOW + ASSUMED
    assert outcome.token_set.refresh_token_expires_at is None


def test_expiry_fields_not_in_extras() -> None:
    outcome = granted(token(expires_in=60, expires_on="1767229199", scope="a"))

    assert outcome.token_set.extras == {}


# Refresh token and its expiry


def test_first_refresh_token_issued() -> None:
    outcome = granted(token(refresh_token="r1"))

    assert outcome.refresh_token_change is RefreshTokenChange.ISSUED
    assert outcome.token_set.refresh_token == "r1"


def test_missing_refresh_token_keeps_previous() -> None:
    outcome = granted(token(expires_in=60), previous=PREVIOUS)

    assert outcome.refresh_token_change is RefreshTokenChange.KEPT
    assert outcome.token_set.refresh_token == PREVIOUS.refresh_token
    assert (
        outcome.token_set.refresh_token_expires_at == PREVIOUS.refresh_token_expires_at
    )


@pytest.mark.parametrize("value", ["", "   ", None, 12345])
def test_unusable_refresh_token_keeps_previous(value: object) -> None:
    outcome = granted(token(refresh_token=value), previous=PREVIOUS)

    assert outcome.refresh_token_change is RefreshTokenChange.KEPT
    assert outcome.token_set.refresh_token == PREVIOUS.refresh_token


def test_repeated_refresh_token_unchanged() -> None:
    body = token(refresh_token=PREVIOUS.refresh_token)

    outcome = granted(body, previous=PREVIOUS)

    assert outcome.refresh_token_change is RefreshTokenChange.UNCHANGED
    assert (
        outcome.token_set.refresh_token_expires_at == PREVIOUS.refresh_token_expires_at
    )


def test_new_refresh_token_rotated() -> None:
    outcome = granted(token(refresh_token="r2"), previous=PREVIOUS)

    assert outcome.refresh_token_change is RefreshTokenChange.ROTATED
    assert outcome.token_set.refresh_token == "r2"
    assert outcome.token_set.refresh_token_expires_at is None


def test_no_refresh_token_absent() -> None:
    outcome = granted(token(refresh_token_expires_in=86400))

    assert outcome.refresh_token_change is RefreshTokenChange.ABSENT
    assert outcome.token_set.refresh_token_expires_at is None


@pytest.mark.parametrize(
    "name",
    ["refresh_token_expires_in", "refresh_expires_in", "x_refresh_token_expires_in"],
)
def test_relative_refresh_expiry_fields(name: str) -> None:
    outcome = granted(token(refresh_token="r1", **{name: "86400"}))

    expected = NOW + timedelta(days=1)
    assert outcome.token_set.refresh_token_expires_at == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("refresh_token_expires_at", int((NOW + timedelta(days=2)).timestamp())),
        ("refresh_token_expires_on", "2026-03-03T12:00:00Z"),
        ("refresh_expires_at", "2026-03-03T12:00:00+00:00"),
    ],
)
def test_absolute_refresh_expiry_fields(name: str, value: object) -> None:
    outcome = granted(token(refresh_token="r1", **{name: value}))

    expected = NOW + timedelta(days=2)
    assert outcome.token_set.refresh_token_expires_at == expected


FIXED_WEEK = TokenResponseSettings(
    refresh_token_clock=RefreshTokenClock.FIXED,
    refresh_token_lifetime=timedelta(days=7),
)


def test_fixed_clock_counts_from_authorisation() -> None:
    authorized_at = NOW - timedelta(days=3)

    outcome = granted(
        token(refresh_token="r2"),
        previous=PREVIOUS,
        settings=FIXED_WEEK,
        authorized_at=authorized_at,
    )

    expected = authorized_at + timedelta(days=7)
    assert outcome.token_set.refresh_token_expires_at == expected


def test_fixed_clock_first_authorisation_starts_now() -> None:
    outcome = granted(token(refresh_token="r1"), settings=FIXED_WEEK)

    expected = NOW + timedelta(days=7)
    assert outcome.token_set.refresh_token_expires_at == expected


def test_fixed_clock_without_authorisation_time() -> None:
    outcome = granted(token(refresh_token="r2"), previous=PREVIOUS, settings=FIXED_WEEK)

    expected = PREVIOUS.refresh_token_expires_at
    assert outcome.token_set.refresh_token_expires_at == expected


def test_sliding_clock_extends_kept_token() -> None:
    settings = TokenResponseSettings(
        refresh_token_clock=RefreshTokenClock.SLIDING,
        refresh_token_lifetime=timedelta(days=60),
    )

    outcome = granted(token(), previous=PREVIOUS, settings=settings)

    expected = NOW + timedelta(days=60)
    assert outcome.token_set.refresh_token_expires_at == expected


def test_response_clock_lifetime_for_new_token() -> None:
    settings = TokenResponseSettings(refresh_token_lifetime=timedelta(days=30))

    outcome = granted(token(refresh_token="r2"), previous=PREVIOUS, settings=settings)

    expected = NOW + timedelta(days=30)
    assert outcome.token_set.refresh_token_expires_at == expected


def test_stated_refresh_expiry_beats_clock() -> None:
    body = token(refresh_token="r1", refresh_token_expires_in=86400)

    outcome = granted(body, settings=FIXED_WEEK)

    expected = NOW + timedelta(days=1)
    assert outcome.token_set.refresh_token_expires_at == expected


def test_max_lifetime_caps_sliding_clock() -> None:
    settings = TokenResponseSettings(
        refresh_token_clock=RefreshTokenClock.SLIDING,
        refresh_token_lifetime=timedelta(days=90),
        refresh_token_max_lifetime=timedelta(days=365),
    )
    authorized_at = NOW - timedelta(days=300)

    outcome = granted(
        token(refresh_token="r2"),
        previous=PREVIOUS,
        settings=settings,
        authorized_at=authorized_at,
    )

    expected = authorized_at + timedelta(days=365)
    assert outcome.token_set.refresh_token_expires_at == expected


def test_max_lifetime_without_other_expiry() -> None:
    settings = TokenResponseSettings(refresh_token_max_lifetime=timedelta(days=30))

    outcome = granted(token(refresh_token="r1"), settings=settings)

    expected = NOW + timedelta(days=30)
    assert outcome.token_set.refresh_token_expires_at == expected


# Scopes


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("read write", ("read", "write")),
        ("  read \t write ", ("read", "write")),
        ("repo,gist", ("repo", "gist")),
        ("repo, gist", ("repo", "gist")),
        (["read", "write"], ("read", "write")),
        ("read read write", ("read", "write")),
        ("", ()),
        ([], ()),
    ],
)
def test_scope_shapes(scope: object, expected: tuple[str, ...]) -> None:
    outcome = granted(token(scope=scope))

    assert outcome.token_set.scopes == expected


def test_scopes_array_field() -> None:
    outcome = granted(token(scopes=["oauth", "crm.read"]))

    assert outcome.token_set.scopes == ("oauth", "crm.read")


def test_missing_scope_keeps_previous() -> None:
    outcome = granted(token(), previous=PREVIOUS)

    assert outcome.token_set.scopes == PREVIOUS.scopes


def test_null_scope_keeps_previous() -> None:
    outcome = granted(token(scope=None), previous=PREVIOUS)

    assert outcome.token_set.scopes == PREVIOUS.scopes


def test_empty_scope_replaces_previous() -> None:
    outcome = granted(token(scope=""), previous=PREVIOUS)

    assert outcome.token_set.scopes == ()


def test_missing_scope_first_is_empty() -> None:
    outcome = granted(token())

    assert outcome.token_set.scopes == ()


def test_commas_kept_when_splitting_off() -> None:
    settings = TokenResponseSettings(split_scopes_on_commas=False)

    outcome = granted(token(scope="a,b c"), settings=settings)

    assert outcome.token_set.scopes == ("a,b", "c")


# Token type


@pytest.mark.parametrize(
    ("token_type", "expected"),
    [
        ("bearer", "Bearer"),
        ("BEARER", "Bearer"),
        ("Bearer", "Bearer"),
        ("dpop", "DPoP"),
        ("mac", "mac"),
        ("N_A", "N_A"),
        ("bot", "bot"),
        ("", "Bearer"),
        (None, "Bearer"),
    ],
)
def test_token_type_normalised(token_type: object, expected: str) -> None:
    outcome = granted(token(token_type=token_type))

    assert outcome.token_set.token_type == expected


def test_missing_token_type_is_bearer() -> None:
    outcome = granted(token())

    assert outcome.token_set.token_type == "Bearer"


# Extras


def test_unknown_fields_kept_in_extras() -> None:
    body = token(
        id_token="header.payload.signature",
        user_id="U1",
        instance_url="https://na1.example.test",
        team={"id": "T1", "name": "Example"},
    )

    extras = granted(body).token_set.extras

    assert extras["id_token"] == "header.payload.signature"
    assert extras["user_id"] == "U1"
    assert extras["instance_url"] == "https://na1.example.test"
    assert extras["team"] == {"id": "T1", "name": "Example"}


def test_token_fields_not_in_extras() -> None:
    body = token(refresh_token="r1", token_type="bearer", refresh_expires_in=60)

    extras = granted(body).token_set.extras

    assert "access_token" not in extras
    assert "refresh_token" not in extras
    assert "token_type" not in extras
    assert "refresh_expires_in" not in extras


def test_refresh_merges_previous_extras() -> None:
    body = token(instance_url="https://new.example.test")

    extras = granted(body, previous=PREVIOUS).token_set.extras

    assert extras["account_id"] == "acct-1"
    assert extras["instance_url"] == "https://new.example.test"


# Reading the body


def test_access_token_beats_error_status() -> None:
    outcome = granted(token(), status=400)

    assert outcome.status_code == 400


def test_access_token_beats_server_error() -> None:
    outcome = respond(token(), status=503)

    assert isinstance(outcome, TokenSuccess)


def test_error_in_200_body_fails() -> None:
    outcome = failed({"error": "invalid_grant"}, status=200)

    assert outcome.kind is TokenErrorKind.REAUTH_REQUIRED


def test_form_encoded_body() -> None:
    body = "access_token=abc&expires_in=60&scope=&token_type=bearer"

    outcome = granted(body, content_type=FORM)

    assert outcome.token_set.access_token == "abc"
    assert outcome.token_set.expires_at == NOW + timedelta(seconds=60)
    assert outcome.token_set.scopes == ()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", json.dumps(token())),
        ("text/plain", "access_token=new-access-token-value"),
        (None, json.dumps(token())),
        (None, "access_token=new-access-token-value"),
        (JSON, "access_token=new-access-token-value&token_type=bearer"),
        (FORM, json.dumps(token())),
        ("application/json; charset=UTF-8", json.dumps(token())),
        ("application/vnd.example+json", json.dumps(token())),
        ("not a media type", json.dumps(token())),
    ],
)
def test_mislabelled_body_still_read(content_type: str | None, body: str) -> None:
    outcome = granted(body, content_type=content_type)

    assert outcome.token_set.access_token == "new-access-token-value"


def test_declared_charset_decodes_body() -> None:
    body = json.dumps(token(team="Café"), ensure_ascii=False).encode("latin-1")

    outcome = granted(body, content_type="application/json; charset=ISO-8859-1")

    assert outcome.token_set.extras["team"] == "Café"


def test_unknown_charset_falls_back_to_utf8() -> None:
    outcome = granted(json.dumps(token()), content_type="application/json; charset=x")

    assert outcome.token_set.access_token == "new-access-token-value"


def test_utf8_byte_order_mark_accepted() -> None:
    body = b"\xef\xbb\xbf" + json.dumps(token()).encode()

    outcome = granted(body)

    assert outcome.token_set.access_token == "new-access-token-value"


@pytest.mark.parametrize("charset", ["idna", "rot13", "utf-16"])
def test_unusable_charset_does_not_raise(charset: str) -> None:
    outcome = respond(b"\xff\xfe\x00", content_type=f"{JSON}; charset={charset}")

    assert isinstance(outcome, TokenFailure)
    assert outcome.kind is TokenErrorKind.TRANSIENT


UNREADABLE_BODIES = [
    pytest.param("text/html", b"<html><body>Bad Gateway</body></html>", id="html"),
    pytest.param("text/html", b'<html lang="en"></html>', id="html-attribute"),
    pytest.param(JSON, b"", id="empty"),
    pytest.param(JSON, b"  \r\n ", id="blank"),
    pytest.param(JSON, b"\xff\xfe{", id="invalid-utf8"),
    pytest.param(JSON, b"[]", id="json-array"),
    pytest.param(JSON, b'"access_token"', id="json-string"),
    pytest.param("text/plain", b"Service Unavailable", id="plain-text"),
    pytest.param(JSON, b"[" * 50_000, id="deep-nesting"),
    pytest.param(JSON, b'{"access_token": "x"', id="truncated-json"),
]


@pytest.mark.parametrize(("content_type", "body"), UNREADABLE_BODIES)
def test_unreadable_body_transient(content_type: str, body: bytes) -> None:
    outcome = failed(body, status=400, content_type=content_type)

    assert outcome.kind is TokenErrorKind.TRANSIENT
    assert outcome.error is None


@pytest.mark.parametrize("body", [b"<html></html>", b'<html lang="en"></html>'])
def test_html_description_names_type(body: bytes) -> None:
    outcome = failed(body, status=403, content_type="text/html")

    expected = "the text/html body is neither a JSON object nor form-encoded"
    assert outcome.description == expected


def test_oversized_body_not_parsed() -> None:
    body = json.dumps(token(padding="x" * 70_000))

    outcome = failed(body)

    assert outcome.kind is TokenErrorKind.TRANSIENT
    assert outcome.description is not None
    assert "65536-byte limit" in outcome.description


def test_body_limit_from_settings() -> None:
    settings = TokenResponseSettings(max_body_bytes=100)
    body = json.dumps(token(padding="x" * 100))

    outcome = failed(body, settings=settings)

    assert outcome.kind is TokenErrorKind.TRANSIENT


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "bearer", "expires_in": 3600},
        {"access_token": ""},
        {"access_token": 12345},
        {"error": {".tag": "expired_access_token"}},
    ],
)
def test_no_access_token_no_error_transient(body: dict[str, Any]) -> None:
    outcome = failed(body)

    assert outcome.kind is TokenErrorKind.TRANSIENT
    assert outcome.error is None


def test_no_access_token_no_error_description() -> None:
    outcome = failed({"token_type": "bearer"})

    expected = "the body has neither an access token nor an error code"
    assert outcome.description == expected


# Status codes and Retry-After


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_retry_later_status_transient(status: int) -> None:
    outcome = failed(b"", status=status)

    assert outcome.kind is TokenErrorKind.TRANSIENT


def test_server_error_code_still_transient() -> None:
    outcome = failed({"error": "invalid_grant"}, status=500)

    assert outcome.kind is TokenErrorKind.TRANSIENT
    assert outcome.error == "invalid_grant"


def test_retry_after_seconds() -> None:
    outcome = failed(b"", status=429, retry_after="120")

    assert outcome.retry_after == timedelta(seconds=120)


def test_retry_after_http_date() -> None:
    header = format_datetime(NOW + timedelta(seconds=90), usegmt=True)

    outcome = failed(b"", status=503, retry_after=header)

    assert outcome.retry_after == timedelta(seconds=90)


def test_retry_after_past_date_is_zero() -> None:
    header = format_datetime(NOW - timedelta(minutes=5), usegmt=True)

    outcome = failed(b"", status=503, retry_after=header)

    assert outcome.retry_after == timedelta(0)


@pytest.mark.parametrize("header", ["soon", "-5", "1.5", "", "99999999999999999999"])
def test_retry_after_unusable_ignored(header: str) -> None:
    outcome = failed(b"", status=429, retry_after=header)

    assert outcome.retry_after is None


def test_retry_after_kept_on_error_code() -> None:
    body = {"error": "temporarily_unavailable"}

    outcome = failed(body, status=400, retry_after="30")

    assert outcome.kind is TokenErrorKind.TRANSIENT
    assert outcome.retry_after == timedelta(seconds=30)


# Error classification


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("invalid_grant", TokenErrorKind.REAUTH_REQUIRED),
        ("invalid_client", TokenErrorKind.CLIENT_MISCONFIGURED),
        ("unauthorized_client", TokenErrorKind.CLIENT_MISCONFIGURED),
        ("unsupported_grant_type", TokenErrorKind.CLIENT_MISCONFIGURED),
        ("invalid_scope", TokenErrorKind.CLIENT_MISCONFIGURED),
        ("invalid_request", TokenErrorKind.INVALID_REQUEST),
        ("server_error", TokenErrorKind.TRANSIENT),
        ("temporarily_unavailable", TokenErrorKind.TRANSIENT),
        ("something_new", TokenErrorKind.INVALID_REQUEST),
    ],
)
def test_rfc_6749_error_codes(code: str, kind: TokenErrorKind) -> None:
    outcome = failed({"error": code}, status=400)

    assert outcome.kind is kind
    assert outcome.error == code


def test_mapped_revoked_code() -> None:
    settings = TokenResponseSettings(revoked_codes=frozenset({"token_revoked"}))

    outcome = failed({"ok": False, "error": "token_revoked"}, settings=settings)

    assert outcome.kind is TokenErrorKind.REVOKED


def test_mapped_transient_code() -> None:
    settings = TokenResponseSettings(transient_codes=frozenset({"ratelimited"}))

    outcome = failed({"ok": False, "error": "ratelimited"}, settings=settings)

    assert outcome.kind is TokenErrorKind.TRANSIENT


def test_mapping_overrides_rfc_class() -> None:
    settings = TokenResponseSettings(reauth_codes=frozenset({"invalid_client"}))

    outcome = failed({"error": "invalid_client"}, status=401, settings=settings)

    assert outcome.kind is TokenErrorKind.REAUTH_REQUIRED


def test_mapped_codes_ignore_case() -> None:
    settings = TokenResponseSettings(reauth_codes=frozenset({"BAD_Refresh_Token"}))

    outcome = failed({"error": "bad_refresh_token"}, settings=settings)

    assert outcome.kind is TokenErrorKind.REAUTH_REQUIRED


def test_error_code_from_nested_field() -> None:
    settings = TokenResponseSettings(
        error_code_fields=("error", "errors.0.errorType"),
        error_description_fields=("error_description", "errors.0.message"),
    )
    body = {"errors": [{"errorType": "invalid_grant", "message": "gone"}]}

    outcome = failed(body, status=400, settings=settings)

    assert outcome.kind is TokenErrorKind.REAUTH_REQUIRED
    assert outcome.error == "invalid_grant"
    assert outcome.description == "gone"


def test_nested_field_path_out_of_range() -> None:
    settings = TokenResponseSettings(error_code_fields=("errors.3.errorType",))

    outcome = failed({"errors": []}, status=400, settings=settings)

    assert outcome.kind is TokenErrorKind.TRANSIENT


def test_error_inside_description_classified() -> None:
    inner = json.dumps({"error": "refresh_token_authentication_error"})
    description = f"400 Bad Request: {json.dumps(inner)}"
    settings = TokenResponseSettings(
        reauth_codes=frozenset({"refresh_token_authentication_error"})
    )
    body = {"error": "unsupported_token_type", "error_description": description}

    outcome = failed(body, status=400, settings=settings)

    assert outcome.kind is TokenErrorKind.REAUTH_REQUIRED
    assert outcome.error == "unsupported_token_type"
    assert outcome.nested_error == "refresh_token_authentication_error"


def test_error_object_inside_description() -> None:
    body = {"error": "other", "error_description": 'failed: {"error": "invalid_grant"}'}

    outcome = failed(body, status=400)

    assert outcome.kind is TokenErrorKind.REAUTH_REQUIRED
    assert outcome.nested_error == "invalid_grant"


def test_error_subtype_mapping_wins() -> None:
    settings = TokenResponseSettings(revoked_codes=frozenset({"invalid_rapt"}))
    body = {"error": "invalid_grant", "error_subtype": "invalid_rapt"}

    outcome = failed(body, status=400, settings=settings)

    assert outcome.kind is TokenErrorKind.REVOKED


def test_error_uri_kept() -> None:
    body = {"error": "invalid_grant", "error_uri": "https://docs.example.test/e"}

    outcome = failed(body, status=400)

    assert outcome.error_uri == "https://docs.example.test/e"


# Secrets


def test_description_redacts_previous_tokens() -> None:
    description = (
        f"Refresh token invalid: {PREVIOUS.refresh_token} "
        f"(access token {PREVIOUS.access_token})"
    )
    body = {"error": "invalid_grant", "error_description": description}

    outcome = failed(body, status=400, previous=PREVIOUS)

    assert outcome.description == "Refresh token invalid: *** (access token ***)"


def test_description_redacts_given_secrets() -> None:
    body = {"error": "invalid_grant", "error_description": "code c0de-123 expired"}

    outcome = failed(body, status=400, redact=("c0de-123",))

    assert outcome.description == "code *** expired"


def test_failure_repr_hides_tokens() -> None:
    description = f"bad {PREVIOUS.refresh_token}"
    body = {"error": PREVIOUS.access_token, "error_description": description}

    text = repr(failed(body, status=400, previous=PREVIOUS))

    assert PREVIOUS.access_token not in text
    assert PREVIOUS.refresh_token is not None
    assert PREVIOUS.refresh_token not in text


def test_success_repr_hides_tokens() -> None:
    body = token(refresh_token="new-refresh-token-value", id_token="id.token.value")

    text = repr(granted(body))

    assert "new-access-token-value" not in text
    assert "new-refresh-token-value" not in text
    assert "id.token.value" not in text


def test_description_made_one_line() -> None:
    body = {"error": "invalid_grant", "error_description": "a\r\nTrace ID: 1\x1b[2J"}

    outcome = failed(body, status=400)

    assert outcome.description == "a Trace ID: 1 [2J"


def test_long_description_shortened() -> None:
    body = {"error": "invalid_grant", "error_description": "x" * 5000}

    outcome = failed(body, status=400)

    assert outcome.description is not None
    assert len(outcome.description) == 503
    assert outcome.description.endswith("...")


def test_reason_names_code_and_status() -> None:
    body = {"error": "invalid_grant", "error_description": "Token revoked."}

    outcome = failed(body, status=400)

    assert outcome.reason == "invalid_grant (HTTP 400): Token revoked."


def test_reason_without_code() -> None:
    outcome = failed(b"", status=502)

    assert outcome.reason == "HTTP 502: the body is empty"


# Settings and arguments


def test_code_in_two_maps_rejected() -> None:
    with pytest.raises(InvalidProviderError, match="'token_revoked'"):
        TokenResponseSettings(
            reauth_codes=frozenset({"token_revoked"}),
            revoked_codes=frozenset({"TOKEN_REVOKED"}),
        )


@pytest.mark.parametrize("clock", [RefreshTokenClock.FIXED, RefreshTokenClock.SLIDING])
def test_clock_without_lifetime_rejected(clock: RefreshTokenClock) -> None:
    with pytest.raises(InvalidProviderError, match="refresh_token_lifetime"):
        TokenResponseSettings(refresh_token_clock=clock)


@pytest.mark.parametrize(
    "options",
    [
        {"assumed_lifetime": timedelta(0)},
        {"assumed_lifetime": timedelta(days=400)},
        {"refresh_token_lifetime": timedelta(seconds=-1)},
        {"refresh_token_max_lifetime": timedelta(0)},
        {"error_code_fields": ()},
        {"max_body_bytes": 0},
    ],
)
def test_invalid_settings_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidProviderError):
        TokenResponseSettings(**options)


def test_naive_now_rejected() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        parse_token_response(
            200,
            JSON,
            json.dumps(token()).encode(),
            now=datetime(2026, 3, 1, 12, 0),
            previous=None,
            settings=SETTINGS,
        )
