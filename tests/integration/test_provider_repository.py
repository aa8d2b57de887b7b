"""Providers, the event log and pending authorisations on both databases."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from factories import make_connection, make_provider
from linkvault.adapters.clock import FakeClock
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.provider_repository import (
    SqlAlchemyEventLog,
    SqlAlchemyProviderRepository,
)
from linkvault.adapters.sqlalchemy.state_repository import SqlAlchemyStateRepository
from linkvault.domain import (
    DuplicateError,
    EventType,
    RefreshPolicy,
    RefreshTokenClock,
    TokenEndpointAuth,
    TokenResponseSettings,
)
from linkvault.domain.authorization import AuthorizationState, hash_state
from linkvault.domain.events import ConnectionEvent
from linkvault.ids import new_id


async def test_provider_settings_round_trip(
    database: Database, clock: FakeClock
) -> None:
    provider = make_provider(
        "schwab",
        token_endpoint_auth=TokenEndpointAuth.CLIENT_SECRET_BASIC,
        use_pkce=False,
        extra_authorize_params={"prompt": "consent"},
        refresh_policy=RefreshPolicy(
            margin=timedelta(minutes=5), failure_budget=timedelta(days=2)
        ),
        token_response=TokenResponseSettings(
            reauth_codes=frozenset({"unsupported_token_type"}),
            error_code_fields=("error", "errors.0.errorType"),
            assumed_lifetime=timedelta(minutes=30),
            refresh_token_clock=RefreshTokenClock.FIXED,
            refresh_token_lifetime=timedelta(days=7),
        ),
        client_secret_encrypted=b"sealed-secret",
    )
    async with database.session() as session:
        await SqlAlchemyProviderRepository(session, clock).save(provider)

    async with database.session(readonly=True) as session:
        repository = SqlAlchemyProviderRepository(session, clock)
        by_slug = await repository.get_by_slug("schwab")
        by_id = await repository.get(provider.id)

    assert by_slug is not None
    assert by_id is not None
    assert by_slug.id == provider.id
    assert by_slug.token_response == provider.token_response
    assert by_slug.refresh_policy == provider.refresh_policy
    assert by_slug.extra_authorize_params == {"prompt": "consent"}
    assert by_slug.use_pkce is False
    assert by_slug.client_secret_encrypted == b"sealed-secret"
    assert by_slug.created_at == clock.now()


async def test_provider_duplicate_slug_rejected(
    database: Database, clock: FakeClock
) -> None:
    async with database.session() as session:
        await SqlAlchemyProviderRepository(session, clock).save(make_provider("dup"))

    with pytest.raises(DuplicateError, match="'dup'"):
        async with database.session() as session:
            await SqlAlchemyProviderRepository(session, clock).save(
                make_provider("dup")
            )


async def test_provider_update_and_list(database: Database, clock: FakeClock) -> None:
    first = make_provider("beta")
    second = make_provider("alpha")
    async with database.session() as session:
        repository = SqlAlchemyProviderRepository(session, clock)
        await repository.save(first)
        await repository.save(second)
        first.name = "Beta renamed"
        first.paused_at = clock.now()
        first.paused_reason = "invalid_client"
        await repository.save(first)

    async with database.session(readonly=True) as session:
        listed = await SqlAlchemyProviderRepository(session, clock).list()

    assert [p.slug for p in listed] == ["alpha", "beta"]
    assert listed[1].name == "Beta renamed"
    assert listed[1].is_paused


async def test_event_log_orders_and_filters(
    database: Database, clock: FakeClock
) -> None:
    provider = make_provider("events")
    connection = make_connection(provider, clock.now())
    kinds = [EventType.CONNECTED, EventType.REFRESH_FAILED, EventType.REFRESHED]
    async with database.session() as session:
        log = SqlAlchemyEventLog(session)
        for kind in kinds:
            clock.advance(timedelta(seconds=1))
            await log.append(
                ConnectionEvent.record(
                    id=new_id(),
                    connection=connection,
                    event_type=kind,
                    occurred_at=clock.now(),
                    status_before="active",
                    reason=f"{kind.value} happened",
                    details={"attempt": 1},
                )
            )

    async with database.session(readonly=True) as session:
        log = SqlAlchemyEventLog(session)
        history = await log.list_for_connection(connection.id)
        failures = await log.list_recent_failures()

    assert [e.event_type for e in history] == kinds
    assert history[0].details == {"attempt": 1}
    assert [e.event_type for e in failures] == [EventType.REFRESH_FAILED]


async def test_state_consumed_only_once(database: Database, clock: FakeClock) -> None:
    state = AuthorizationState(
        id=new_id(),
        state_hash=hash_state("opaque-state"),
        connection_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        provider_id=uuid.uuid4(),
        redirect_uri="http://127.0.0.1:8080/callback",
        code_verifier_encrypted=b"sealed-verifier",
        created_at=clock.now(),
        expires_at=clock.now() + timedelta(minutes=10),
    )
    async with database.session() as session:
        await SqlAlchemyStateRepository(session).add(state)

    async with database.session() as session:
        repository = SqlAlchemyStateRepository(session)
        found = await repository.find_by_hash(hash_state("opaque-state"))
        assert found is not None
        first = await repository.consume(found, clock.now())
        second = await repository.consume(found, clock.now())

    assert first is True
    assert second is False
    assert found.code_verifier_encrypted == b"sealed-verifier"
    assert found.expires_at == clock.now() + timedelta(minutes=10)
