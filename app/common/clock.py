"""Time comes from a clock object so tests can move it instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def utc_now() -> datetime:
    return datetime.now(UTC)


class Clock:
    """The real wall clock."""

    def now(self) -> datetime:
        return utc_now()


class FrozenClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utc_now()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if value.tzinfo is UTC:  # what PostgreSQL hands back: nothing to convert
        return value
    return value.astimezone(UTC)


# The last resort when no zone name loads: pages, the inbox and the reminder planner agree.
FALLBACK_ZONE = ZoneInfo("UTC")


def zone_named(*names: str | None) -> ZoneInfo:
    """The first of ``names`` that loads, so a bad patient zone falls back to the clinic's
    and an unknown clinic zone to UTC, rather than breaking a page."""
    for name in names:
        if not name:
            continue
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return FALLBACK_ZONE
