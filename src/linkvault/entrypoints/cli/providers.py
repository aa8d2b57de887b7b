"""`linkvault providers ...`: define providers, store client secrets, pause them."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from linkvault.adapters.provider_file import (
    ImportReport,
    import_providers,
    load_providers,
    provider_from_definition,
)
from linkvault.application.client_secrets import seal_client_secret
from linkvault.bootstrap import Services, UnitOfWork
from linkvault.domain.errors import LinkvaultError, ProviderNotFoundError
from linkvault.domain.provider import Provider, TokenEndpointAuth
from linkvault.domain.status import CredentialType
from linkvault.domain.token_response import RefreshTokenClock
from linkvault.entrypoints.cli._common import console, fail, with_services

T = TypeVar("T")

app = typer.Typer(
    help="Define providers, store their client secrets, pause and resume them.",
    no_args_is_help=True,
)

# The paused_reason column has room for 2,000 characters, but a reason is meant
# to be one short line.
_MAX_REASON_CHARS = 500

SlugArgument = Annotated[str, typer.Argument(help="Provider slug, such as schwab.")]


def _run(ctx: typer.Context, body: Callable[[Services], Awaitable[T]]) -> T:
    """Run `body` with the services; a project error exits with one line."""

    async def guarded(services: Services) -> T:
        try:
            return await body(services)
        except LinkvaultError as error:
            # Messages quote TOML such as [[providers]], which Rich would
            # otherwise read as markup and drop.
            raise fail(str(error)) from None

    return with_services(ctx, guarded)


async def _get(work: UnitOfWork, slug: str) -> Provider:
    provider = await work.providers.get_by_slug(slug)
    if provider is None:
        raise ProviderNotFoundError(slug)
    return provider


@app.command("list")
def list_providers(ctx: typer.Context) -> None:
    """List providers by slug, with the source of each client secret but never it."""

    async def body(services: Services) -> Sequence[Provider]:
        async with services.unit_of_work(readonly=True) as work:
            return await work.providers.list()

    providers = _run(ctx, body)
    table = Table(
        "slug",
        "name",
        "type",
        "token endpoint auth",
        "PKCE",
        "client secret",
        "paused",
    )
    for column in table.columns:
        # On a narrow terminal long values fold instead of ending in an
        # ellipsis that would hide a variable name or a reason.
        column.overflow = "fold"
    for provider in providers:
        table.add_row(*(escape(cell) for cell in _row(provider)))
    console.print(table)
    console.print(f"{len(providers)} provider(s)")


def _row(provider: Provider) -> tuple[str, ...]:
    auth, pkce = "", ""
    if provider.credential_type is CredentialType.OAUTH2:
        auth = provider.token_endpoint_auth.value
        pkce = "yes" if provider.use_pkce else "no"

    return (
        provider.slug,
        provider.name,
        provider.credential_type.value,
        auth,
        pkce,
        _secret_source(provider),
        _pause_text(provider),
    )


def _secret_source(provider: Provider) -> str:
    if provider.credential_type is not CredentialType.OAUTH2:
        return ""
    if provider.token_endpoint_auth is TokenEndpointAuth.NONE:
        return "not used"
    sources = []
    if provider.client_secret_env:
        sources.append(f"${provider.client_secret_env}")
    if provider.client_secret_encrypted is not None:
        sources.append("stored")
    return ", ".join(sources) or "missing"


def _pause_text(provider: Provider) -> str:
    if provider.paused_at is None:
        return ""
    since = provider.paused_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"since {since}: {provider.paused_reason or 'no reason given'}"


@app.command("add")
def add(
    ctx: typer.Context,
    slug: SlugArgument,
    name: Annotated[str, typer.Option(help="Name shown to people.")],
    credential_type: Annotated[
        CredentialType, typer.Option("--type", help="Credential type.")
    ] = CredentialType.OAUTH2,
    authorization_url: Annotated[
        str | None, typer.Option(help="Authorization endpoint URL (https).")
    ] = None,
    token_url: Annotated[
        str | None, typer.Option(help="Token endpoint URL (https).")
    ] = None,
    revocation_url: Annotated[
        str | None, typer.Option(help="RFC 7009 revocation endpoint URL (https).")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="OAuth client id.")] = None,
    client_secret_env: Annotated[
        str | None,
        typer.Option(help="Name of the environment variable with the client secret."),
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="Scope to request (repeatable).")
    ] = None,
    token_endpoint_auth: Annotated[
        TokenEndpointAuth,
        typer.Option(help="How the client authenticates at the token endpoint."),
    ] = TokenEndpointAuth.CLIENT_SECRET_BASIC,
    pkce: Annotated[
        bool, typer.Option("--pkce/--no-pkce", help="Send a PKCE code challenge.")
    ] = True,
    authorize_param: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE",
            help="Extra authorization request parameter (repeatable).",
        ),
    ] = None,
    margin_seconds: Annotated[
        int | None,
        typer.Option(
            help="Seconds before access-token expiry to refresh (default: 20%)."
        ),
    ] = None,
    failure_budget_seconds: Annotated[
        int | None,
        typer.Option(help="Seconds of transient failures before `failed`."),
    ] = None,
    assumed_lifetime_seconds: Annotated[
        int | None,
        typer.Option(help="Access-token lifetime when a response has no expires_in."),
    ] = None,
    refresh_token_clock: Annotated[
        RefreshTokenClock | None,
        typer.Option(help="How the refresh token ages."),
    ] = None,
    refresh_token_lifetime_seconds: Annotated[
        int | None,
        typer.Option(help="Refresh-token lifetime in seconds (fixed, sliding)."),
    ] = None,
    refresh_token_max_lifetime_seconds: Annotated[
        int | None,
        typer.Option(
            help="Maximum refresh-token lifetime in seconds from first authorisation."
        ),
    ] = None,
    reauth_code: Annotated[
        list[str] | None,
        typer.Option(help="Error code that means re-authorise (repeatable)."),
    ] = None,
    revoked_code: Annotated[
        list[str] | None,
        typer.Option(help="Error code that means revoked (repeatable)."),
    ] = None,
    misconfigured_code: Annotated[
        list[str] | None,
        typer.Option(help="Error code that means a misconfigured client (repeatable)."),
    ] = None,
    transient_code: Annotated[
        list[str] | None,
        typer.Option(help="Error code that means retry later (repeatable)."),
    ] = None,
    error_code_field: Annotated[
        list[str] | None,
        typer.Option(help="Dotted path to the error code (repeatable, in order)."),
    ] = None,
    error_description_field: Annotated[
        list[str] | None,
        typer.Option(help="Dotted path to the error description (repeatable)."),
    ] = None,
    split_scopes_on_commas: Annotated[
        bool | None,
        typer.Option(
            "--split-scopes-on-commas/--no-split-scopes-on-commas",
            help="Whether commas separate scopes in responses (default: yes).",
        ),
    ] = None,
) -> None:
    """Create a provider, or replace the definition of the one with this slug.

    The options are the keys of a providers.toml table, and options left out
    take their defaults. Replacing keeps the provider's id, its stored client
    secret and its pause.
    """
    errors = {
        "reauth_codes": reauth_code,
        "revoked_codes": revoked_code,
        "misconfigured_codes": misconfigured_code,
        "transient_codes": transient_code,
        "error_code_fields": error_code_field,
        "error_description_fields": error_description_field,
    }
    refresh = {
        "margin_seconds": margin_seconds,
        "failure_budget_seconds": failure_budget_seconds,
        "assumed_lifetime_seconds": assumed_lifetime_seconds,
        "refresh_token_clock": refresh_token_clock,
        "refresh_token_lifetime_seconds": refresh_token_lifetime_seconds,
        "refresh_token_max_lifetime_seconds": refresh_token_max_lifetime_seconds,
        "split_scopes_on_commas": split_scopes_on_commas,
        "errors": _given(errors),
    }
    definition = {
        "slug": slug,
        "name": name,
        "credential_type": credential_type,
        "authorization_url": authorization_url,
        "token_url": token_url,
        "revocation_url": revocation_url,
        "client_id": client_id,
        "client_secret_env": client_secret_env,
        "scopes": scope,
        "token_endpoint_auth": token_endpoint_auth,
        "pkce": pkce,
        "extra_authorize_params": _parse_params(authorize_param or []),
        "refresh": _given(refresh),
    }
    _save_definition(ctx, _given(definition))


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """Drop options that were not given, so the definition's defaults apply."""
    return {key: value for key, value in values.items() if value not in (None, [], {})}


def _parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise fail(
                f"--authorize-param {item!r} is not KEY=VALUE; write it "
                "as, for example, --authorize-param access_type=offline."
            )
        params[key] = value
    return params


def _save_definition(ctx: typer.Context, definition: dict[str, Any]) -> None:
    try:
        provider = provider_from_definition(definition, source="Provider definition")
    except LinkvaultError as error:
        raise fail(str(error)) from None

    async def body(services: Services) -> ImportReport:
        async with services.unit_of_work() as work:
            return await import_providers(work.providers, [provider])

    report = _run(ctx, body)
    slug = provider.slug
    if report.created:
        console.print(f"Created provider {slug}.")
    elif report.updated:
        console.print(
            f"Updated provider {slug}; its id, stored client secret and pause are kept."
        )
    else:
        console.print(f"Provider {slug} is unchanged.")


@app.command("import")
def import_file(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Provider file, such as providers.toml.")
    ],
) -> None:
    """Create or update the providers of a TOML file, matched by slug.

    Providers that the file does not name are left alone. An update keeps the
    provider's id, its stored client secret and its pause.
    """
    try:
        providers = load_providers(file)
    except LinkvaultError as error:
        raise fail(str(error)) from None

    async def body(services: Services) -> ImportReport:
        async with services.unit_of_work() as work:
            return await import_providers(work.providers, providers)

    report = _run(ctx, body)
    console.print(
        f"Imported {escape(str(file))}: {len(report.created)} created, "
        f"{len(report.updated)} updated, {len(report.unchanged)} unchanged."
    )
    for label, slugs in (("created", report.created), ("updated", report.updated)):
        if slugs:
            console.print(f"{label}: {', '.join(slugs)}")


@app.command("set-secret")
def set_secret(
    ctx: typer.Context,
    slug: SlugArgument,
    from_env: Annotated[
        str | None,
        typer.Option(
            "--from-env",
            metavar="VAR",
            help="Read the secret from this environment variable, not a prompt.",
        ),
    ] = None,
) -> None:
    """Store a provider's client secret, encrypted under the primary key.

    Without --from-env the secret is read from a prompt that does not echo it.
    An environment variable named by the provider's client_secret_env still
    takes precedence over the stored secret.
    """
    from_variable = _read_variable(from_env) if from_env else None

    async def check(services: Services) -> Provider:
        # Fail on an unknown slug or a missing key before asking for the secret.
        async with services.unit_of_work(readonly=True) as work:
            provider = await _get(work, slug)
        _ = services.keyring
        return provider

    provider = _run(ctx, check)
    secret = from_variable or typer.prompt(f"Client secret for {slug}", hide_input=True)

    async def store(services: Services) -> str:
        async with services.unit_of_work() as work:
            current = await _get(work, slug)
            seal_client_secret(current, services.keyring, secret)
            await work.providers.save(current)
        return services.keyring.primary_key_id

    key_id = _run(ctx, store)
    console.print(
        f"Stored the client secret of provider {slug}, encrypted under key "
        f"{escape(key_id)}."
    )
    _warn_about_precedence(provider)


def _read_variable(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        state = "is empty" if name in os.environ else "is not set"
        raise fail(
            f"Environment variable {escape(name)} {state}; export it with the "
            "client secret, or leave out --from-env to type the secret at a prompt."
        )
    return value


def _warn_about_precedence(provider: Provider) -> None:
    if provider.token_endpoint_auth is TokenEndpointAuth.NONE:
        console.print(
            f"Note: provider {provider.slug} uses token_endpoint_auth none, so "
            "the secret is not sent."
        )
    elif provider.client_secret_env:
        console.print(
            f"Note: when {provider.client_secret_env} is set, its value is used "
            "instead of the stored secret."
        )


@app.command("pause")
def pause(
    ctx: typer.Context,
    slug: SlugArgument,
    reason: Annotated[
        str,
        typer.Option(
            help="Reason for the pause, in one line; `providers list` shows it."
        ),
    ],
) -> None:
    """Pause a provider: refresh workers skip its connections until `resume`.

    Pausing a paused provider replaces the reason and keeps the start time.
    """
    text = " ".join(reason.split())
    if not text:
        raise fail("--reason is empty; say why the provider is paused.")
    if len(text) > _MAX_REASON_CHARS:
        raise fail(
            f"--reason has {len(text)} characters; shorten it to at most "
            f"{_MAX_REASON_CHARS}."
        )

    async def body(services: Services) -> None:
        async with services.unit_of_work() as work:
            provider = await _get(work, slug)
            provider.paused_at = provider.paused_at or services.clock.now()
            provider.paused_reason = text
            await work.providers.save(provider)

    _run(ctx, body)
    console.print(
        f"Paused provider {slug}: {escape(text)}. Resume it with "
        f"`linkvault providers resume {slug}`."
    )


@app.command("resume")
def resume(ctx: typer.Context, slug: SlugArgument) -> None:
    """Lift a provider's pause, so its connections are refreshed again."""

    async def body(services: Services) -> bool:
        async with services.unit_of_work() as work:
            provider = await _get(work, slug)
            if not provider.is_paused:
                return False
            provider.paused_at = None
            provider.paused_reason = None
            await work.providers.save(provider)
        return True

    if _run(ctx, body):
        console.print(f"Resumed provider {slug}.")
    else:
        console.print(f"Provider {slug} is not paused; nothing changed.")
