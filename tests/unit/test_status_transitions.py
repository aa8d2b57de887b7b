"""Connection lifecycle: the transition table, the entity methods and invariants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import product
from uuid import uuid4

import pytest

from linkvault.domain import (
    TRANSITIONS,
    ConnectionStatus,
    CredentialType,
    DomainError,
    InvalidConnectionError,
    InvalidTransitionError,
    ProviderConnection,
    ProviderCredentials,
)

Status = ConnectionStatus

CREATED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NOW = CREATED + timedelta(hours=1)
NAIVE_NOW = datetime(2026, 1, 1, 13, 0)

# The lifecycle table of the design, written out pair by pair so that a change
# to TRANSITIONS cannot pass by changing the expectation with it.
EXPECTED_MOVES = {
    (Status.PENDING, Status.ACTIVE),
    (Status.PENDING, Status.FAILED),
    (Status.PENDING, Status.DISCONNECTED),
    (Status.ACTIVE, Status.ACTIVE),
    (Status.ACTIVE, Status.EXPIRED),
    (Status.ACTIVE, Status.REVOKED),
    (Status.ACTIVE, Status.FAILED),
    (Status.ACTIVE, Status.DISCONNECTED),
    (Status.EXPIRED, Status.ACTIVE),
    (Status.EXPIRED, Status.DISCONNECTED),
    (Status.REVOKED, Status.ACTIVE),
    (Status.REVOKED, Status.DISCONNECTED),
    (Status.FAILED, Status.ACTIVE),
    (Status.FAILED, Status.DISCONNECTED),
    (Status.DISCONNECTED, Status.DISCONNECTED),
}
ALL_PAIRS = list(product(Status, Status))
ALLOWED_PAIRS = [pair for pair in ALL_PAIRS if pair in EXPECTED_MOVES]
FORBIDDEN_PAIRS = [pair for pair in ALL_PAIRS if pair not in EXPECTED_MOVES]


def pair_id(pair: tuple[ConnectionStatus, ConnectionStatus]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def make_credentials(blob: bytes = b"blob-v1") -> ProviderCredentials:
    return ProviderCredentials(
        encrypted_data=blob,
        credential_type=CredentialType.OAUTH2,
        expires_at=NOW + timedelta(hours=1),
    )


def make_connection(status: ConnectionStatus) -> ProviderConnection:
    """Build a connection in `status` with refresh bookkeeping filled in.

    Every status but pending and disconnected gets credentials.
    """
    has_credentials = status not in (Status.PENDING, Status.DISCONNECTED)
    return ProviderConnection(
        id=uuid4(),
        user_id=uuid4(),
        provider_id=uuid4(),
        provider_slug="schwab",
        created_at=CREATED,
        updated_at=CREATED,
        status=status,
        credentials=make_credentials() if has_credentials else None,
        next_refresh_at=CREATED + timedelta(minutes=50) if has_credentials else None,
        refresh_token_expires_at=(
            CREATED + timedelta(days=7) if has_credentials else None
        ),
        refresh_failures=2,
        last_refresh_error="timeout",
    )


# One entity method per target status, each called at NOW.
MOVES: dict[ConnectionStatus, Callable[[ProviderConnection], None]] = {
    Status.ACTIVE: lambda c: c.activate(make_credentials(b"blob-v2"), NOW),
    Status.EXPIRED: lambda c: c.mark_expired(NOW, "invalid_grant"),
    Status.REVOKED: lambda c: c.mark_revoked(NOW, "token_revoked"),
    Status.FAILED: lambda c: c.mark_failed(NOW, "refresh failure budget exhausted"),
    Status.DISCONNECTED: lambda c: c.disconnect(NOW, "user request"),
}
METHOD_PAIRS = [pair for pair in ALL_PAIRS if pair[1] in MOVES]


def test_table_has_row_for_every_status() -> None:
    assert set(TRANSITIONS) == set(Status)


@pytest.mark.parametrize("pair", ALL_PAIRS, ids=pair_id)
def test_can_move_to_matches_lifecycle(
    pair: tuple[ConnectionStatus, ConnectionStatus],
) -> None:
    current, target = pair

    assert current.can_move_to(target) is (pair in EXPECTED_MOVES)


@pytest.mark.parametrize("current", list(Status), ids=str)
def test_allowed_targets_match_lifecycle(current: ConnectionStatus) -> None:
    expected = {target for source, target in EXPECTED_MOVES if source is current}

    assert current.allowed_targets() == expected


@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_check_move_to_accepts_allowed(
    pair: tuple[ConnectionStatus, ConnectionStatus],
) -> None:
    current, target = pair

    current.check_move_to(target)


@pytest.mark.parametrize("pair", FORBIDDEN_PAIRS, ids=pair_id)
def test_forbidden_move_names_both_states(
    pair: tuple[ConnectionStatus, ConnectionStatus],
) -> None:
    current, target = pair

    with pytest.raises(InvalidTransitionError) as caught:
        current.check_move_to(target)

    message = str(caught.value)
    assert repr(current.value) in message
    assert repr(target.value) in message
    assert caught.value.current == current.value
    assert caught.value.target == target.value
    assert isinstance(caught.value, DomainError)


def test_nothing_moves_back_to_pending() -> None:
    sources = [status for status in Status if status.can_move_to(Status.PENDING)]

    assert sources == []


@pytest.mark.parametrize("pair", METHOD_PAIRS, ids=pair_id)
def test_entity_method_follows_table(
    pair: tuple[ConnectionStatus, ConnectionStatus],
) -> None:
    current, target = pair
    connection = make_connection(current)
    credentials_before = connection.credentials

    if pair in EXPECTED_MOVES:
        MOVES[target](connection)
        assert connection.status is target
        assert connection.updated_at == NOW
    else:
        with pytest.raises(InvalidTransitionError):
            MOVES[target](connection)
        assert connection.status is current
        assert connection.credentials is credentials_before
        assert connection.updated_at == CREATED


@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_allowed_move_keeps_invariants(
    pair: tuple[ConnectionStatus, ConnectionStatus],
) -> None:
    current, target = pair
    connection = make_connection(current)

    MOVES[target](connection)

    connection.check_invariants()
    if target is Status.ACTIVE:
        assert connection.credentials is not None
    if target is Status.DISCONNECTED:
        assert connection.credentials is None


def test_new_connection_is_pending() -> None:
    connection = ProviderConnection.new(
        id=uuid4(),
        user_id=uuid4(),
        provider_id=uuid4(),
        provider_slug="alpaca",
        now=CREATED,
        alias="paper account",
    )

    assert connection.status is Status.PENDING
    assert connection.credentials is None
    assert connection.created_at == CREATED
    assert connection.updated_at == CREATED
    assert connection.alias == "paper account"
    assert connection.version == 0


def test_activate_stores_credentials_and_schedule() -> None:
    connection = make_connection(Status.PENDING)
    credentials = make_credentials(b"blob-v2")
    next_refresh = NOW + timedelta(minutes=48)
    refresh_token_expiry = NOW + timedelta(days=7)

    connection.activate(
        credentials,
        NOW,
        next_refresh_at=next_refresh,
        refresh_token_expires_at=refresh_token_expiry,
    )

    assert connection.status is Status.ACTIVE
    assert connection.credentials is credentials
    assert connection.connected_at == NOW
    assert connection.next_refresh_at == next_refresh
    assert connection.refresh_token_expires_at == refresh_token_expiry
    assert connection.refresh_failures == 0
    assert connection.last_refresh_error is None


@pytest.mark.parametrize(
    "current", [Status.EXPIRED, Status.REVOKED, Status.FAILED], ids=str
)
def test_reauthorise_clears_status_reason(current: ConnectionStatus) -> None:
    connection = make_connection(Status.ACTIVE)
    MOVES[current](connection)

    connection.activate(make_credentials(b"blob-v3"), NOW + timedelta(minutes=1))

    assert connection.status is Status.ACTIVE
    assert connection.status_reason is None


def test_replace_credentials_refreshes_active() -> None:
    connection = make_connection(Status.ACTIVE)
    credentials = make_credentials(b"blob-v2")
    next_refresh = NOW + timedelta(minutes=48)

    connection.replace_credentials(credentials, NOW, next_refresh_at=next_refresh)

    assert connection.status is Status.ACTIVE
    assert connection.credentials is credentials
    assert connection.last_refresh_at == NOW
    assert connection.updated_at == NOW
    assert connection.next_refresh_at == next_refresh
    assert connection.refresh_failures == 0
    assert connection.last_refresh_error is None


def test_replace_credentials_keeps_refresh_expiry() -> None:
    connection = make_connection(Status.ACTIVE)
    expiry_before = connection.refresh_token_expires_at

    connection.replace_credentials(make_credentials(b"blob-v2"), NOW)

    assert expiry_before is not None
    assert connection.refresh_token_expires_at == expiry_before


def test_replace_credentials_updates_refresh_expiry() -> None:
    connection = make_connection(Status.ACTIVE)
    new_expiry = NOW + timedelta(days=30)

    connection.replace_credentials(
        make_credentials(b"blob-v2"), NOW, refresh_token_expires_at=new_expiry
    )

    assert connection.refresh_token_expires_at == new_expiry


@pytest.mark.parametrize(
    "current", [s for s in Status if s is not Status.ACTIVE], ids=str
)
def test_replace_credentials_requires_active(current: ConnectionStatus) -> None:
    connection = make_connection(current)
    credentials_before = connection.credentials

    with pytest.raises(InvalidConnectionError) as caught:
        connection.replace_credentials(make_credentials(b"blob-v2"), NOW)

    assert current.value in str(caught.value)
    assert connection.status is current
    assert connection.credentials is credentials_before
    assert connection.last_refresh_at is None


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (Status.EXPIRED, "invalid_grant"),
        (Status.REVOKED, "token_revoked"),
        (Status.FAILED, "refresh failure budget exhausted"),
    ],
    ids=["expired", "revoked", "failed"],
)
def test_mark_records_reason_and_unschedules(
    target: ConnectionStatus, reason: str
) -> None:
    connection = make_connection(Status.ACTIVE)

    MOVES[target](connection)

    assert connection.status is target
    assert connection.status_reason == reason
    assert connection.next_refresh_at is None


@pytest.mark.parametrize(
    "current", [s for s in Status if s is not Status.DISCONNECTED], ids=str
)
def test_disconnect_clears_credentials_and_schedule(
    current: ConnectionStatus,
) -> None:
    connection = make_connection(current)

    connection.disconnect(NOW, "user request")

    assert connection.status is Status.DISCONNECTED
    assert connection.credentials is None
    assert connection.next_refresh_at is None
    assert connection.refresh_token_expires_at is None
    assert connection.status_reason == "user request"


def test_disconnect_twice_is_idempotent() -> None:
    connection = make_connection(Status.ACTIVE)
    connection.disconnect(NOW)

    connection.disconnect(NOW + timedelta(minutes=1))

    assert connection.status is Status.DISCONNECTED
    assert connection.credentials is None
    assert connection.next_refresh_at is None
    connection.check_invariants()


def test_active_without_credentials_rejected() -> None:
    with pytest.raises(InvalidConnectionError, match="active"):
        ProviderConnection(
            id=uuid4(),
            user_id=uuid4(),
            provider_id=uuid4(),
            provider_slug="schwab",
            created_at=CREATED,
            updated_at=CREATED,
            status=Status.ACTIVE,
            credentials=None,
        )


def test_disconnected_with_credentials_rejected() -> None:
    with pytest.raises(InvalidConnectionError, match="disconnected"):
        ProviderConnection(
            id=uuid4(),
            user_id=uuid4(),
            provider_id=uuid4(),
            provider_slug="schwab",
            created_at=CREATED,
            updated_at=CREATED,
            status=Status.DISCONNECTED,
            credentials=make_credentials(),
        )


@pytest.mark.parametrize(
    "status", [s for s in Status if s is not Status.ACTIVE], ids=str
)
def test_inactive_statuses_allow_no_credentials(status: ConnectionStatus) -> None:
    connection = ProviderConnection(
        id=uuid4(),
        user_id=uuid4(),
        provider_id=uuid4(),
        provider_slug="schwab",
        created_at=CREATED,
        updated_at=CREATED,
        status=status,
    )

    assert connection.credentials is None


def test_negative_refresh_failures_rejected() -> None:
    with pytest.raises(InvalidConnectionError, match="refresh_failures"):
        ProviderConnection(
            id=uuid4(),
            user_id=uuid4(),
            provider_id=uuid4(),
            provider_slug="schwab",
            created_at=CREATED,
            updated_at=CREATED,
            refresh_failures=-1,
        )


def test_method_rejects_naive_now() -> None:
    connection = make_connection(Status.ACTIVE)

    with pytest.raises(ValueError, match="now"):
        connection.mark_expired(NAIVE_NOW, "invalid_grant")


NAIVE_MOVES: dict[
    str, tuple[ConnectionStatus, Callable[[ProviderConnection], None]]
] = {
    "activate": (Status.PENDING, lambda c: c.activate(make_credentials(), NAIVE_NOW)),
    "disconnect": (Status.ACTIVE, lambda c: c.disconnect(NAIVE_NOW)),
    "mark_expired": (
        Status.ACTIVE,
        lambda c: c.mark_expired(NAIVE_NOW, "invalid_grant"),
    ),
}


@pytest.mark.parametrize("method", list(NAIVE_MOVES))
def test_rejected_move_changes_nothing(method: str) -> None:
    current, move = NAIVE_MOVES[method]
    connection = make_connection(current)

    with pytest.raises(ValueError, match="now"):
        move(connection)

    assert connection.status is current
    connection.check_invariants()


CREDENTIAL_TYPE_TRAITS = {
    CredentialType.OAUTH2: (True, True),
    CredentialType.API_KEY: (False, False),
    CredentialType.LINK_TOKEN: (True, True),
    CredentialType.CERTIFICATE: (False, False),
    CredentialType.FILE_IMPORT: (False, False),
    CredentialType.CUSTOM: (False, True),
}


def test_credential_type_traits_cover_members() -> None:
    assert set(CREDENTIAL_TYPE_TRAITS) == set(CredentialType)


@pytest.mark.parametrize("credential_type", list(CredentialType), ids=str)
def test_credential_type_is_refreshable(credential_type: CredentialType) -> None:
    refreshable, _ = CREDENTIAL_TYPE_TRAITS[credential_type]

    assert credential_type.is_refreshable is refreshable


@pytest.mark.parametrize("credential_type", list(CredentialType), ids=str)
def test_credential_type_expires(credential_type: CredentialType) -> None:
    _, expires = CREDENTIAL_TYPE_TRAITS[credential_type]

    assert credential_type.expires is expires
