"""Provider files: TOML parsing, validation messages, the example file, import."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from linkvault.adapters.memory import InMemoryProviderRepository
from linkvault.adapters.provider_file import (
    import_providers,
    load_providers,
    parse_providers,
    provider_from_definition,
)
from linkvault.domain import ConfigurationError, CredentialType, Provider
from linkvault.domain.provider import TokenEndpointAuth
from linkvault.domain.token_response import RefreshTokenClock

EXAMPLE_FILE = Path(__file__).parents[2] / "providers.example.toml"
SOURCE = "Provider file test.toml"

OAUTH_TABLE = """
[[providers]]
slug = "acme"
name = "Acme Bank"
credential_type = "oauth2"
authorization_url = "https://auth.acme.example/authorize"
token_url = "https://auth.acme.example/token"
client_id = "acme-client"
"""

FULL_FILE = """
[[providers]]
slug = "acme"
name = "Acme Bank"
credential_type = "oauth2"
authorization_url = "https://auth.acme.example/authorize"
token_url = "https://auth.acme.example/token"
revocation_url = "https://auth.acme.example/revoke"
client_id = "acme-client"
client_secret_env = "ACME_CLIENT_SECRET"
scopes = ["accounts:read", "offline_access"]
token_endpoint_auth = "client_secret_post"
pkce = false
extra_authorize_params = { prompt = "consent" }

[providers.refresh]
margin_seconds = 120
failure_budget_seconds = 86400
assumed_lifetime_seconds = 900
refresh_token_clock = "sliding"
refresh_token_lifetime_seconds = 7776000
refresh_token_max_lifetime_seconds = 31536000
split_scopes_on_commas = false

[providers.refresh.errors]
reauth_codes = ["bad_refresh_token"]
revoked_codes = ["token_revoked"]
misconfigured_codes = ["bad_client_secret"]
transient_codes = ["ratelimited"]
error_code_fields = ["errors.0.errorType", "error"]
error_description_fields = ["errors.0.message"]

[[providers]]
slug = "quotes"
name = "Quotes API"
credential_type = "api_key"
"""


def parse(text: str) -> list[Provider]:
    return parse_providers(text, source=SOURCE)


def rejection(text: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        parse(text)
    return str(caught.value)


def test_full_file_loads_every_field() -> None:
    acme, quotes = parse(FULL_FILE)

    assert acme.slug == "acme"
    assert acme.name == "Acme Bank"
    assert acme.credential_type is CredentialType.OAUTH2
    assert acme.revocation_url == "https://auth.acme.example/revoke"
    assert acme.client_id == "acme-client"
    assert acme.client_secret_env == "ACME_CLIENT_SECRET"
    assert acme.client_secret_encrypted is None
    assert acme.scopes == ("accounts:read", "offline_access")
    assert acme.token_endpoint_auth is TokenEndpointAuth.CLIENT_SECRET_POST
    assert acme.use_pkce is False
    assert acme.extra_authorize_params == {"prompt": "consent"}
    assert quotes.credential_type is CredentialType.API_KEY


def test_full_file_loads_refresh_settings() -> None:
    acme = parse(FULL_FILE)[0]
    policy = acme.refresh_policy
    settings = acme.token_response

    assert policy.margin == timedelta(minutes=2)
    assert policy.failure_budget == timedelta(days=1)
    assert settings.assumed_lifetime == timedelta(minutes=15)
    assert settings.refresh_token_clock is RefreshTokenClock.SLIDING
    assert settings.refresh_token_lifetime == timedelta(days=90)
    assert settings.refresh_token_max_lifetime == timedelta(days=365)
    assert settings.split_scopes_on_commas is False
    assert settings.reauth_codes == {"bad_refresh_token"}
    assert settings.revoked_codes == {"token_revoked"}
    assert settings.misconfigured_codes == {"bad_client_secret"}
    assert settings.transient_codes == {"ratelimited"}
    assert settings.error_code_fields == ("errors.0.errorType", "error")
    assert settings.error_description_fields == ("errors.0.message",)


def test_left_out_keys_take_defaults() -> None:
    provider = parse(OAUTH_TABLE)[0]

    assert provider.use_pkce is True
    assert provider.token_endpoint_auth is TokenEndpointAuth.CLIENT_SECRET_BASIC
    assert provider.scopes == ()
    assert provider.refresh_policy.margin is None
    assert provider.refresh_policy.failure_budget == timedelta(days=4)
    assert provider.token_response.assumed_lifetime == timedelta(hours=1)
    assert provider.token_response.refresh_token_clock is RefreshTokenClock.RESPONSE
    assert provider.token_response.error_code_fields == ("error",)


def test_each_load_gives_fresh_ids() -> None:
    first = parse(OAUTH_TABLE)[0]
    second = parse(OAUTH_TABLE)[0]

    assert first.id != second.id


def test_client_secret_key_rejected() -> None:
    message = rejection(OAUTH_TABLE + 'client_secret = "hunter2-value"\n')

    assert SOURCE in message
    assert "provider 'acme'" in message
    assert "client_secret_env" in message
    assert "linkvault providers set-secret acme" in message
    assert "hunter2-value" not in message


def test_client_secret_in_sub_table_rejected() -> None:
    text = OAUTH_TABLE + '[providers.extra_authorize_params]\nClient-Secret = "x1"\n'

    message = rejection(text)

    assert "extra_authorize_params.Client-Secret" in message
    assert "must not be stored" in message


def test_non_loopback_http_url_rejected() -> None:
    text = OAUTH_TABLE.replace(
        "https://auth.acme.example/token", "http://auth.acme.example/token"
    )

    message = rejection(text)

    assert SOURCE in message
    assert "provider 'acme', field token_url" in message
    assert "allowed only for loopback hosts" in message
    assert "use https://" in message


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8765", "127.10.20.30", "localhost:8080", "LOCALHOST", "[::1]:9000"],
)
def test_loopback_http_url_accepted(host: str) -> None:
    text = OAUTH_TABLE.replace(
        "https://auth.acme.example/token", f"http://{host}/token"
    )

    provider = parse(text)[0]

    assert provider.token_url == f"http://{host}/token"


@pytest.mark.parametrize(
    "url",
    ["ftp://auth.acme.example/token", "auth.acme.example/token", "https://"],
)
def test_non_http_url_rejected(url: str) -> None:
    text = OAUTH_TABLE.replace("https://auth.acme.example/token", url)

    message = rejection(text)

    assert "field token_url" in message
    assert "is not a valid http(s) URL" in message


def test_url_with_password_rejected() -> None:
    text = OAUTH_TABLE.replace(
        "https://auth.acme.example/token", "https://user:pw@auth.acme.example/token"
    )

    message = rejection(text)

    assert "field token_url" in message
    assert "user name or password" in message


def test_unknown_key_rejected() -> None:
    message = rejection(OAUTH_TABLE + 'client_secert = "typo-secret"\n')

    assert "provider 'acme', field client_secert" in message
    assert "unknown key" in message
    assert "typo-secret" not in message


def test_unknown_key_in_errors_table_rejected() -> None:
    text = OAUTH_TABLE + "[providers.refresh.errors]\nreauth_code = ['x']\n"

    message = rejection(text)

    assert "field refresh.errors.reauth_code" in message
    assert "unknown key" in message


def test_unknown_top_level_key_rejected() -> None:
    message = rejection("version = 2\n" + OAUTH_TABLE)

    assert "field version: unknown key" in message


def test_bad_enum_value_names_choices() -> None:
    message = rejection(OAUTH_TABLE + 'token_endpoint_auth = "basic"\n')

    assert "field token_endpoint_auth" in message
    assert "'client_secret_basic'" in message
    assert "not 'basic'" in message


def test_bad_clock_value_rejected() -> None:
    text = OAUTH_TABLE + '[providers.refresh]\nrefresh_token_clock = "daily"\n'

    message = rejection(text)

    assert "field refresh.refresh_token_clock" in message
    assert "not 'daily'" in message


def test_missing_oauth_fields_named() -> None:
    text = OAUTH_TABLE.replace('token_url = "https://auth.acme.example/token"\n', "")

    message = rejection(text)

    assert "Provider 'acme'" in message
    assert "missing token_url" in message


def test_missing_required_key_named() -> None:
    message = rejection(OAUTH_TABLE.replace('name = "Acme Bank"\n', ""))

    assert "provider 'acme', field name: required key is missing" in message


def test_entry_without_slug_named_by_position() -> None:
    message = rejection(OAUTH_TABLE + OAUTH_TABLE.replace('slug = "acme"\n', ""))

    assert "provider #2, field slug" in message


def test_invalid_slug_rejected() -> None:
    message = rejection(OAUTH_TABLE.replace('"acme"', '"Acme Bank"'))

    assert "slug 'Acme Bank' is invalid" in message


def test_duplicate_slug_rejected() -> None:
    message = rejection(OAUTH_TABLE + OAUTH_TABLE)

    assert "'acme' is defined more than once" in message


def test_fixed_clock_without_lifetime_rejected() -> None:
    text = OAUTH_TABLE + '[providers.refresh]\nrefresh_token_clock = "fixed"\n'

    message = rejection(text)

    assert "field refresh" in message
    assert "needs refresh_token_lifetime_seconds" in message


def test_code_in_two_lists_rejected() -> None:
    text = OAUTH_TABLE + (
        "[providers.refresh.errors]\n"
        'reauth_codes = ["gone"]\n'
        'revoked_codes = ["GONE"]\n'
    )

    message = rejection(text)

    assert "'gone' is in both reauth_codes and revoked_codes" in message


@pytest.mark.parametrize("value", ['"1800"', "0", "-5", "true", "1.5"])
def test_bad_duration_rejected(value: str) -> None:
    text = OAUTH_TABLE + f"[providers.refresh]\nassumed_lifetime_seconds = {value}\n"

    message = rejection(text)

    assert "field refresh.assumed_lifetime_seconds" in message


def test_scope_with_space_rejected() -> None:
    message = rejection(OAUTH_TABLE + 'scopes = ["read write"]\n')

    assert "field scopes.0" in message
    assert "list each scope as its own string" in message


def test_bad_variable_name_not_echoed() -> None:
    message = rejection(OAUTH_TABLE + 'client_secret_env = "s3cr3t-v@lue"\n')

    assert "field client_secret_env" in message
    assert "not a valid environment variable name" in message
    assert "s3cr3t-v@lue" not in message


def test_reserved_authorize_param_rejected() -> None:
    message = rejection(OAUTH_TABLE + 'extra_authorize_params = { state = "x" }\n')

    assert "field extra_authorize_params" in message
    assert "sets state itself" in message


def test_keyed_tables_layout_rejected() -> None:
    message = rejection('[providers.acme]\nname = "Acme"\n')

    assert "write each provider as a [[providers]] table" in message


def test_empty_file_rejected() -> None:
    message = rejection("")

    assert "no providers found" in message


def test_invalid_toml_rejected() -> None:
    message = rejection("[[providers]\nslug = 1\n")

    assert "is not valid TOML" in message
    assert "line 1" in message


def test_missing_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigurationError) as caught:
        load_providers(path)

    assert f"Provider file {path} does not exist" in str(caught.value)


def test_definition_mapping_validated() -> None:
    definition = {"slug": "x", "name": "X", "credential_type": "api_key", "pkce": 1}

    with pytest.raises(ConfigurationError) as caught:
        provider_from_definition(definition, source="Provider definition")

    assert "provider 'x', field pkce" in str(caught.value)


def test_example_file_loads() -> None:
    providers = load_providers(EXAMPLE_FILE)

    assert [p.slug for p in providers] == ["sandbox", "schwab", "prices-api"]


def test_example_sandbox_entry() -> None:
    sandbox = load_providers(EXAMPLE_FILE)[0]

    assert sandbox.token_url == "http://127.0.0.1:8765/token"
    assert sandbox.revocation_url == "http://127.0.0.1:8765/revoke"
    assert sandbox.client_id == "sandbox-confidential"
    assert sandbox.client_secret_env == "SANDBOX_CLIENT_SECRET"
    assert sandbox.token_endpoint_auth is TokenEndpointAuth.CLIENT_SECRET_BASIC
    assert sandbox.use_pkce is True
    assert sandbox.scopes == ("accounts:read",)


def test_example_schwab_has_fixed_seven_days() -> None:
    schwab = load_providers(EXAMPLE_FILE)[1]
    settings = schwab.token_response

    assert settings.refresh_token_clock is RefreshTokenClock.FIXED
    assert settings.refresh_token_lifetime == timedelta(days=7)
    assert settings.assumed_lifetime == timedelta(minutes=30)
    assert "refresh_token_authentication_error" in settings.reauth_codes
    assert "unsupported_token_type" in settings.reauth_codes
    assert schwab.revocation_url is None
    assert schwab.use_pkce is False
    assert schwab.token_endpoint_auth is TokenEndpointAuth.CLIENT_SECRET_BASIC


async def test_import_creates_then_reports_unchanged() -> None:
    repository = InMemoryProviderRepository()

    first = await import_providers(repository, parse(FULL_FILE))
    second = await import_providers(repository, parse(FULL_FILE))

    assert first.created == ("acme", "quotes")
    assert first.updated == ()
    assert second.created == ()
    assert second.unchanged == ("acme", "quotes")


async def test_import_update_keeps_stored_fields() -> None:
    repository = InMemoryProviderRepository()
    await import_providers(repository, parse(OAUTH_TABLE))
    stored = await repository.get_by_slug("acme")
    assert stored is not None
    paused_at = datetime(2026, 3, 1, tzinfo=UTC)
    stored.client_secret_encrypted = b"sealed"
    stored.paused_at = paused_at
    stored.paused_reason = "invalid_client"
    await repository.save(stored)

    report = await import_providers(
        repository, parse(OAUTH_TABLE.replace("Acme Bank", "Acme"))
    )
    updated = await repository.get_by_slug("acme")

    assert report.updated == ("acme",)
    assert updated is not None
    assert updated.id == stored.id
    assert updated.name == "Acme"
    assert updated.client_secret_encrypted == b"sealed"
    assert updated.paused_at == paused_at
    assert updated.paused_reason == "invalid_client"


async def test_import_leaves_unnamed_providers() -> None:
    repository = InMemoryProviderRepository()
    await import_providers(repository, parse(FULL_FILE))

    await import_providers(repository, parse(OAUTH_TABLE))

    assert [p.slug for p in await repository.list()] == ["acme", "quotes"]
