"""Next refresh time of freshly stored tokens."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from linkvault.application.scheduling import next_refresh_at, refresh_margin
from linkvault.domain import RefreshPolicy, TokenSet

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def tokens(
    lifetime: timedelta | None,
    *,
    refresh_token: str | None = "r",
    refresh_lifetime: timedelta | None = None,
) -> TokenSet:
    return TokenSet(
        access_token="a",
        refresh_token=refresh_token,
        expires_at=None if lifetime is None else NOW + lifetime,
        refresh_token_expires_at=(
            None if refresh_lifetime is None else NOW + refresh_lifetime
        ),
    )


@pytest.mark.parametrize(
    ("lifetime", "margin"),
    [
        (timedelta(seconds=20), timedelta(seconds=10)),
        (timedelta(minutes=30), timedelta(minutes=6)),
        (timedelta(hours=1), timedelta(minutes=12)),
        (timedelta(hours=8), timedelta(minutes=30)),
        (timedelta(seconds=5), timedelta(seconds=5)),
    ],
)
def test_margin_is_clamped_share(lifetime: timedelta, margin: timedelta) -> None:
    assert refresh_margin(lifetime, RefreshPolicy()) == margin


def test_provider_margin_overrides_share() -> None:
    policy = RefreshPolicy(margin=timedelta(minutes=2))

    assert refresh_margin(timedelta(hours=1), policy) == timedelta(minutes=2)


def test_refresh_before_expiry_with_jitter() -> None:
    due_times = {
        next_refresh_at(
            tokens(timedelta(hours=1)), NOW, RefreshPolicy(), jitter=random.Random(seed)
        )
        for seed in range(20)
    }

    latest = NOW + timedelta(minutes=48)
    earliest = latest - timedelta(minutes=12) * 0.1
    assert all(due is not None for due in due_times)
    assert all(earliest <= due <= latest for due in due_times if due)
    assert len(due_times) > 1


def test_no_expiry_needs_no_refresh() -> None:
    assert next_refresh_at(tokens(None), NOW, RefreshPolicy()) is None


def test_no_refresh_token_needs_no_refresh() -> None:
    no_refresh = tokens(timedelta(hours=1), refresh_token=None)

    assert next_refresh_at(no_refresh, NOW, RefreshPolicy()) is None


def test_early_refresh_token_expiry_wins() -> None:
    short = tokens(timedelta(hours=1), refresh_lifetime=timedelta(minutes=20))

    due = next_refresh_at(short, NOW, RefreshPolicy(), jitter=random.Random(1))

    assert due == NOW + timedelta(minutes=20) - timedelta(minutes=12)


def test_never_before_issue_time() -> None:
    expired = tokens(timedelta(seconds=-30))

    assert next_refresh_at(expired, NOW, RefreshPolicy()) == NOW
