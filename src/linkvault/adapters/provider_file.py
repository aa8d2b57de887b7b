"""Load provider definitions from a TOML file and import them by slug.

A provider file (`providers.toml`) is an array of `[[providers]]` tables, one
per provider. Each may be followed by a `[providers.refresh]` sub-table and a
`[providers.refresh.errors]` sub-table, which belong to the `[[providers]]`
table above them:

    [[providers]]
    slug = "schwab"
    name = "Charles Schwab"
    credential_type = "oauth2"
    authorization_url = "https://api.schwabapi.com/v1/oauth/authorize"
    token_url = "https://api.schwabapi.com/v1/oauth/token"
    client_id = "YOUR-APP-KEY"
    client_secret_env = "SCHWAB_CLIENT_SECRET"
    pkce = false

    [providers.refresh]
    assumed_lifetime_seconds = 1800
    refresh_token_clock = "fixed"
    refresh_token_lifetime_seconds = 604800

    [providers.refresh.errors]
    reauth_codes = ["unsupported_token_type"]

`providers.example.toml` at the repository root describes every key. A key
that is left out takes the default of `Provider`, `RefreshPolicy` or
`TokenResponseSettings`. Unknown keys are rejected. A `client_secret` key is
rejected anywhere in the file, because client secrets come from the environment
variable named by `client_secret_env` or from the keyring-encrypted store.
URLs must be http(s), and plain http is accepted only for loopback hosts.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from linkvault.domain.errors import ConfigurationError, InvalidProviderError
from linkvault.domain.provider import Provider, RefreshPolicy, TokenEndpointAuth
from linkvault.domain.status import CredentialType
from linkvault.domain.token_response import (
    MAX_LIFETIME,
    RefreshTokenClock,
    TokenResponseSettings,
)
from linkvault.ids import new_id
from linkvault.ports.repositories import ProviderRepository

__all__ = [
    "ImportReport",
    "import_providers",
    "load_providers",
    "parse_providers",
    "provider_from_definition",
]

_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Parameters that the authorization request sets itself (RFC 6749 section
# 4.1.1, RFC 7636 section 4.3), plus the secret that must never appear in a URL.
_RESERVED_AUTHORIZE_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "client_secret",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    }
)


def _check_url(value: str) -> str:
    """Accept an absolute http(s) URL; plain http only for a loopback host."""
    try:
        url = _HTTP_URL.validate_python(value)
    except ValidationError as error:
        reason = error.errors(include_url=False)[0]["msg"]
        raise PydanticCustomError(
            "invalid_url",
            "{url} is not a valid http(s) URL ({reason})",
            {"url": value, "reason": reason},
        ) from None

    if url.username is not None or url.password is not None:
        # A user name or password in the URL would store a credential in the file.
        raise PydanticCustomError(
            "url_credentials",
            "the URL contains a user name or password; remove them, and configure "
            "the client secret with client_secret_env or "
            "`linkvault providers set-secret`",
        )
    if url.scheme == "http" and not _is_loopback(url.host or ""):
        raise PydanticCustomError(
            "insecure_url",
            "{url} uses plain http, which is allowed only for loopback hosts "
            "(127.0.0.0/8, localhost, ::1); use https://",
            {"url": value},
        )
    return value.strip()


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_authorize_params(params: dict[str, str]) -> dict[str, str]:
    reserved = sorted(name for name in params if name in _RESERVED_AUTHORIZE_PARAMS)
    if reserved:
        raise PydanticCustomError(
            "reserved_parameter",
            "the authorization request sets {names} itself, so remove them here",
            {"names": ", ".join(reserved)},
        )
    return params


def _check_scope(scope: str) -> str:
    # A scope token is printable ASCII without spaces, double quotes or
    # backslashes (RFC 6749 section 3.3).
    if not _SCOPE_TOKEN.fullmatch(scope):
        raise PydanticCustomError(
            "invalid_scope",
            "scope '{scope}' is empty or contains a space, a quote, a backslash or "
            "a non-ASCII character; list each scope as its own string",
            {"scope": scope},
        )
    return scope


def _check_variable_name(name: str) -> str:
    # The value is not echoed: a secret pasted here by mistake stays out of logs.
    if not _VARIABLE_NAME.fullmatch(name):
        raise PydanticCustomError(
            "invalid_variable_name",
            "not a valid environment variable name; use letters, digits and '_', "
            "not starting with a digit, and put the secret itself in that variable",
        )
    return name


HttpsUrl = Annotated[str, AfterValidator(_check_url)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
ScopeToken = Annotated[str, AfterValidator(_check_scope)]
EnvironmentVariable = Annotated[str, AfterValidator(_check_variable_name)]
# TOML has real integers, so strict mode keeps "1800" or true from passing as one.
Seconds = Annotated[int, Field(strict=True, gt=0)]
Lifetime = Annotated[
    int, Field(strict=True, gt=0, le=int(MAX_LIFETIME.total_seconds()))
]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ErrorsTable(_Table):
    """Error codes and fields of a token endpoint (`[providers.refresh.errors]`)."""

    reauth_codes: list[Text] = []
    revoked_codes: list[Text] = []
    misconfigured_codes: list[Text] = []
    transient_codes: list[Text] = []
    error_code_fields: Annotated[list[Text], Field(min_length=1)] | None = None
    error_description_fields: list[Text] | None = None


class _RefreshTable(_Table):
    """Refresh policy and token response settings (`[providers.refresh]`)."""

    margin_seconds: Annotated[int, Field(strict=True, ge=0)] | None = None
    failure_budget_seconds: Seconds | None = None
    assumed_lifetime_seconds: Lifetime | None = None
    refresh_token_clock: RefreshTokenClock | None = None
    refresh_token_lifetime_seconds: Seconds | None = None
    refresh_token_max_lifetime_seconds: Seconds | None = None
    split_scopes_on_commas: StrictBool | None = None
    max_body_bytes: Annotated[int, Field(strict=True, gt=0)] | None = None
    errors: _ErrorsTable = _ErrorsTable()

    @model_validator(mode="after")
    def _check_clock_has_lifetime(self) -> _RefreshTable:
        clock = self.refresh_token_clock
        needs_lifetime = clock is not None and clock is not RefreshTokenClock.RESPONSE
        if needs_lifetime and self.refresh_token_lifetime_seconds is None:
            raise PydanticCustomError(
                "missing_lifetime",
                "refresh_token_clock '{clock}' needs refresh_token_lifetime_seconds; "
                "set it, or use the 'response' clock",
                {"clock": str(clock)},
            )
        return self

    def policy(self) -> RefreshPolicy:
        values: dict[str, Any] = {}
        if self.margin_seconds is not None:
            values["margin"] = timedelta(seconds=self.margin_seconds)
        if self.failure_budget_seconds is not None:
            values["failure_budget"] = timedelta(seconds=self.failure_budget_seconds)
        return RefreshPolicy(**values)

    def token_response(self) -> TokenResponseSettings:
        errors = self.errors
        values: dict[str, Any] = {
            "reauth_codes": frozenset(errors.reauth_codes),
            "revoked_codes": frozenset(errors.revoked_codes),
            "misconfigured_codes": frozenset(errors.misconfigured_codes),
            "transient_codes": frozenset(errors.transient_codes),
        }
        optional = {
            "error_code_fields": _tuple(errors.error_code_fields),
            "error_description_fields": _tuple(errors.error_description_fields),
            "assumed_lifetime": _duration(self.assumed_lifetime_seconds),
            "refresh_token_clock": self.refresh_token_clock,
            "refresh_token_lifetime": _duration(self.refresh_token_lifetime_seconds),
            "refresh_token_max_lifetime": _duration(
                self.refresh_token_max_lifetime_seconds
            ),
            "split_scopes_on_commas": self.split_scopes_on_commas,
            "max_body_bytes": self.max_body_bytes,
        }
        # A key left out of the file keeps the domain default.
        values.update({k: v for k, v in optional.items() if v is not None})
        return TokenResponseSettings(**values)


class _ProviderTable(_Table):
    """One `[[providers]]` table."""

    slug: str
    name: str
    credential_type: CredentialType
    authorization_url: HttpsUrl | None = None
    token_url: HttpsUrl | None = None
    revocation_url: HttpsUrl | None = None
    client_id: Text | None = None
    client_secret_env: EnvironmentVariable | None = None
    scopes: list[ScopeToken] = []
    token_endpoint_auth: TokenEndpointAuth = TokenEndpointAuth.CLIENT_SECRET_BASIC
    pkce: StrictBool = True
    extra_authorize_params: Annotated[
        dict[str, str], AfterValidator(_check_authorize_params)
    ] = {}
    refresh: _RefreshTable = _RefreshTable()

    def to_provider(self) -> Provider:
        """Build the domain provider; raises `InvalidProviderError` on a bad rule."""
        return Provider(
            id=new_id(),
            slug=self.slug,
            name=self.name,
            credential_type=self.credential_type,
            authorization_url=self.authorization_url,
            token_url=self.token_url,
            revocation_url=self.revocation_url,
            client_id=self.client_id,
            client_secret_env=self.client_secret_env,
            scopes=tuple(dict.fromkeys(self.scopes)),
            token_endpoint_auth=self.token_endpoint_auth,
            use_pkce=self.pkce,
            extra_authorize_params=dict(self.extra_authorize_params),
            refresh_policy=self.refresh.policy(),
            token_response=self.refresh.token_response(),
        )


class _ProviderFile(_Table):
    providers: Annotated[list[_ProviderTable], Field(min_length=1)]


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _duration(seconds: int | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def load_providers(path: Path) -> list[Provider]:
    """Read and validate a provider file.

    Every provider gets a fresh id; `import_providers` keeps the stored id of a
    slug that already exists.

    Raises:
        ConfigurationError: The file is missing, unreadable, not TOML, or
            invalid. The message names the file, the provider slug and the
            field, and the change to make.
    """
    source = f"Provider file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"{source} does not exist; check the path, or copy "
            "providers.example.toml from the linkvault repository as a start."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(
            f"{source} could not be read ({error}); check its permissions and "
            "that it is UTF-8 text."
        ) from error

    return parse_providers(text, source=source)


def parse_providers(text: str, *, source: str) -> list[Provider]:
    """Validate the TOML text of a provider file; `source` starts each error."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(
            f"{source} is not valid TOML ({error}); fix the syntax at that line."
        ) from error

    return _providers_from_document(document, source)


def provider_from_definition(definition: Mapping[str, Any], *, source: str) -> Provider:
    """Validate one provider table given as a mapping, as the CLI collects it."""
    document = {"providers": [dict(definition)]}
    return _providers_from_document(document, source)[0]


def _providers_from_document(document: dict[str, Any], source: str) -> list[Provider]:
    _reject_client_secret(document, source)

    try:
        parsed = _ProviderFile.model_validate(document)
    except ValidationError as error:
        problems = [_describe(item, document) for item in error.errors()]
        raise ConfigurationError(
            f"{source} is invalid: {'; '.join(problems)}."
        ) from None

    providers, problems = [], []
    for table in parsed.providers:
        try:
            providers.append(table.to_provider())
        except InvalidProviderError as error:
            problems.append(f"Provider {table.slug!r}: {error}")
    problems.extend(_duplicate_slugs(providers))
    if problems:
        raise ConfigurationError(f"{source} is invalid: {' '.join(problems)}")

    return providers


def _reject_client_secret(document: dict[str, Any], source: str) -> None:
    for index, table in enumerate(_raw_tables(document)):
        path = _find_client_secret(table)
        if path is None:
            continue
        slug = table.get("slug") if isinstance(table, dict) else None
        command_slug = slug if isinstance(slug, str) and slug else "SLUG"
        raise ConfigurationError(
            f"{source} is invalid: provider {_slug_of(table, index)}, key {path}: "
            "a client secret must not be stored in a provider file. Remove it, "
            "then put the secret in the environment variable named by "
            "client_secret_env, or store it encrypted with "
            f"`linkvault providers set-secret {command_slug}`."
        )


def _find_client_secret(value: object, path: str = "") -> str | None:
    """Return the dotted path of a `client_secret` key anywhere under `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if str(key).casefold().replace("-", "_") == "client_secret":
                return here
            found = _find_client_secret(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_client_secret(item, f"{path}.{index}")
            if found is not None:
                return found
    return None


def _raw_tables(document: dict[str, Any]) -> list[Any]:
    tables = document.get("providers")
    if isinstance(tables, list):
        return tables
    # `[providers.SLUG]` tables are not the supported layout, but a secret in
    # one is still reported as a secret.
    if isinstance(tables, dict):
        return list(tables.values())
    return []


def _slug_of(table: object, index: int) -> str:
    slug = table.get("slug") if isinstance(table, dict) else None
    if isinstance(slug, str) and slug:
        return repr(slug)
    return f"#{index + 1}"


def _describe(error: ErrorDetails, document: dict[str, Any]) -> str:
    """Turn one pydantic error into `provider 'x', field f: what to do`."""
    location = list(error["loc"])
    where = "the file"
    if location[:1] == ["providers"] and len(location) >= 2:
        index = location[1]
        if isinstance(index, int):
            slug = _slug_of(_raw_tables(document)[index], index)
            where = f"provider {slug}"
            location = location[2:]
    field = ".".join(str(part) for part in location)
    target = f"{where}, field {field}" if field else where

    return f"{target}: {_advice(error, field)}"


def _advice(error: ErrorDetails, field: str) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key; remove it or correct its spelling"
    if field == "providers" and kind in ("missing", "list_type", "too_short"):
        return "no providers found; write each provider as a [[providers]] table"
    if kind == "missing":
        return "required key is missing; add it"
    if kind in ("enum", "literal_error") and isinstance(error.get("input"), str):
        return f"{error['msg']}, not {error['input']!r}"
    # Other inputs are not echoed: a mistyped key may contain a secret.
    return str(error["msg"])


def _duplicate_slugs(providers: Sequence[Provider]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for provider in providers:
        if provider.slug in seen and provider.slug not in repeated:
            repeated.append(provider.slug)
        seen.add(provider.slug)
    return [
        f"Provider {slug!r} is defined more than once; keep one definition."
        for slug in repeated
    ]


@dataclass(frozen=True, slots=True)
class ImportReport:
    """Slugs of the providers that an import created, updated or left unchanged."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


async def import_providers(
    repository: ProviderRepository, providers: Sequence[Provider]
) -> ImportReport:
    """Insert new providers and update the stored ones that have the same slug.

    An update keeps the stored id (so connections stay attached), the stored
    client secret, the pause and `created_at`; every other field comes from
    `providers`. Stored providers that `providers` does not name are left alone.
    Nothing is committed here: the caller's unit of work does that.
    """
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []

    for provider in providers:
        existing = await repository.get_by_slug(provider.slug)
        if existing is None:
            await repository.save(provider)
            created.append(provider.slug)
            continue

        merged = _merge(existing, provider)
        if merged == existing:
            unchanged.append(provider.slug)
            continue
        await repository.save(merged)
        updated.append(provider.slug)

    return ImportReport(tuple(created), tuple(updated), tuple(unchanged))


def _merge(existing: Provider, definition: Provider) -> Provider:
    """Return `definition` with the fields that belong to the stored row."""
    return replace(
        definition,
        id=existing.id,
        client_secret_encrypted=existing.client_secret_encrypted,
        paused_at=existing.paused_at,
        paused_reason=existing.paused_reason,
        created_at=existing.created_at,
        updated_at=existing.updated_at,
    )
