"""When to refresh: the next refresh time of a freshly stored token set."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from linkvault.domain.credentials import TokenSet
from linkvault.domain.provider import RefreshPolicy

MIN_MARGIN = timedelta(seconds=10)
MAX_MARGIN = timedelta(minutes=30)
# Share of the token's lifetime refreshed early when the provider sets no margin.
MARGIN_SHARE = 0.2
# Up to this share of the margin is added at random, so that connections made
# together do not all come due in the same second.
JITTER_SHARE = 0.1


def refresh_margin(lifetime: timedelta, policy: RefreshPolicy) -> timedelta:
    """Return how long before expiry to refresh a token of `lifetime`."""
    if policy.margin is not None:
        return min(policy.margin, lifetime)
    share = lifetime * MARGIN_SHARE
    return min(max(share, MIN_MARGIN), MAX_MARGIN, lifetime)


def next_refresh_at(
    tokens: TokenSet,
    issued_at: datetime,
    policy: RefreshPolicy,
    *,
    jitter: random.Random | None = None,
) -> datetime | None:
    """Return when to refresh `tokens`, or None when they need no refresh.

    None means either the access token never expires or there is no refresh
    token to redeem. The token response parser has already replaced a missing
    `expires_in` by the provider's assumed lifetime when a refresh token came
    back, so such tokens are still scheduled and their refresh token kept alive.
    """
    if tokens.expires_at is None or tokens.refresh_token is None:
        return None

    lifetime = max(tokens.expires_at - issued_at, timedelta(0))
    margin = refresh_margin(lifetime, policy)
    chooser = jitter or random.Random()  # noqa: S311 -- spreading load, not secrecy
    spread = margin * JITTER_SHARE * chooser.random()
    due = tokens.expires_at - margin - spread

    # A refresh-token deadline earlier than the access token's comes first.
    deadline = tokens.refresh_token_expires_at
    if deadline is not None and deadline - margin < due:
        due = deadline - margin
    return max(due, issued_at)
