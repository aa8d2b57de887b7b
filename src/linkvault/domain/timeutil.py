"""Timezone rules shared by every layer: all datetimes are aware and in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from linkvault.domain.errors import NaiveDatetimeError


def require_aware(value: datetime, name: str) -> datetime:
    """Return `value` converted to UTC, or raise if it has no time zone.

    A naive datetime is ambiguous (local time or UTC?), so it is rejected
    instead of guessed.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{name}={value.isoformat()} has no time zone; pass an aware datetime "
            "such as datetime.now(UTC)."
        )
    return value.astimezone(UTC)


def optional_aware(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else require_aware(value, name)
