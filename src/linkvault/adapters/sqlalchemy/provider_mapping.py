"""Conversions between `providers` rows and `Provider` entities.

Durations are stored as seconds in the JSON columns, so the rows read the
same on SQLite and PostgreSQL and stay editable by hand.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import RowMapping

from linkvault.domain.provider import Provider, RefreshPolicy
from linkvault.domain.status import CredentialType
from linkvault.domain.token_response import RefreshTokenClock, TokenResponseSettings


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _delta(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def policy_to_json(policy: RefreshPolicy) -> dict[str, Any]:
    return {
        "margin_s": _seconds(policy.margin),
        "failure_budget_s": policy.failure_budget.total_seconds(),
    }


def policy_from_json(document: dict[str, Any]) -> RefreshPolicy:
    defaults = RefreshPolicy()
    return RefreshPolicy(
        margin=_delta(document.get("margin_s")),
        failure_budget=_delta(document.get("failure_budget_s"))
        or defaults.failure_budget,
    )


def token_settings_to_json(settings: TokenResponseSettings) -> dict[str, Any]:
    return {
        "reauth_codes": sorted(settings.reauth_codes),
        "revoked_codes": sorted(settings.revoked_codes),
        "misconfigured_codes": sorted(settings.misconfigured_codes),
        "transient_codes": sorted(settings.transient_codes),
        "error_code_fields": list(settings.error_code_fields),
        "error_description_fields": list(settings.error_description_fields),
        "assumed_lifetime_s": settings.assumed_lifetime.total_seconds(),
        "refresh_token_clock": settings.refresh_token_clock.value,
        "refresh_token_lifetime_s": _seconds(settings.refresh_token_lifetime),
        "refresh_token_max_lifetime_s": _seconds(settings.refresh_token_max_lifetime),
        "split_scopes_on_commas": settings.split_scopes_on_commas,
        "max_body_bytes": settings.max_body_bytes,
    }


def token_settings_from_json(document: dict[str, Any]) -> TokenResponseSettings:
    defaults = TokenResponseSettings()
    return TokenResponseSettings(
        reauth_codes=frozenset(document.get("reauth_codes", ())),
        revoked_codes=frozenset(document.get("revoked_codes", ())),
        misconfigured_codes=frozenset(document.get("misconfigured_codes", ())),
        transient_codes=frozenset(document.get("transient_codes", ())),
        error_code_fields=tuple(
            document.get("error_code_fields", defaults.error_code_fields)
        ),
        error_description_fields=tuple(
            document.get("error_description_fields", defaults.error_description_fields)
        ),
        assumed_lifetime=_delta(document.get("assumed_lifetime_s"))
        or defaults.assumed_lifetime,
        refresh_token_clock=RefreshTokenClock(
            document.get("refresh_token_clock", defaults.refresh_token_clock)
        ),
        refresh_token_lifetime=_delta(document.get("refresh_token_lifetime_s")),
        refresh_token_max_lifetime=_delta(document.get("refresh_token_max_lifetime_s")),
        split_scopes_on_commas=document.get(
            "split_scopes_on_commas", defaults.split_scopes_on_commas
        ),
        max_body_bytes=document.get("max_body_bytes", defaults.max_body_bytes),
    )


def provider_to_row(provider: Provider) -> dict[str, Any]:
    return {
        "id": provider.id,
        "slug": provider.slug,
        "name": provider.name,
        "credential_type": provider.credential_type.value,
        "authorization_url": provider.authorization_url,
        "token_url": provider.token_url,
        "revocation_url": provider.revocation_url,
        "client_id": provider.client_id,
        "client_secret_env": provider.client_secret_env,
        "client_secret_encrypted": provider.client_secret_encrypted,
        "scopes": list(provider.scopes),
        "token_endpoint_auth": provider.token_endpoint_auth.value,
        "use_pkce": provider.use_pkce,
        "extra_authorize_params": dict(provider.extra_authorize_params),
        "refresh_policy": policy_to_json(provider.refresh_policy),
        "settings": {"token_response": token_settings_to_json(provider.token_response)},
        "paused_at": provider.paused_at,
        "paused_reason": provider.paused_reason,
        "created_at": provider.created_at,
        "updated_at": provider.updated_at,
    }


def row_to_provider(row: RowMapping) -> Provider:
    settings = row["settings"] or {}
    return Provider(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        credential_type=CredentialType(row["credential_type"]),
        authorization_url=row["authorization_url"],
        token_url=row["token_url"],
        revocation_url=row["revocation_url"],
        client_id=row["client_id"],
        client_secret_env=row["client_secret_env"],
        client_secret_encrypted=row["client_secret_encrypted"],
        scopes=tuple(row["scopes"]),
        token_endpoint_auth=row["token_endpoint_auth"],
        use_pkce=row["use_pkce"],
        extra_authorize_params=dict(row["extra_authorize_params"]),
        refresh_policy=policy_from_json(row["refresh_policy"]),
        token_response=token_settings_from_json(settings.get("token_response", {})),
        paused_at=row["paused_at"],
        paused_reason=row["paused_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
