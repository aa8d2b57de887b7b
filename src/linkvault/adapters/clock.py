"""Clock adapters: the system clock and a settable clock for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from linkvault.domain.timeutil import require_aware


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when a test advances it."""

    def __init__(self, start: datetime | None = None) -> None:
        initial = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._now = require_aware(initial, "start")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, value: datetime) -> None:
        self._now = require_aware(value, "value")
