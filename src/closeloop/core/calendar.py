"""Business days and weeks: a local calendar day (or Monday-to-Sunday week) as a UTC interval."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from closeloop.core.clock import utcnow


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def today(timezone: str) -> date:
    """The local date now (from the product clock)."""
    return utcnow().astimezone(zone(timezone)).date()


def local_date(moment: datetime, timezone: str) -> date:
    return moment.astimezone(zone(timezone)).date()


def days_as_utc(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC covering the local days ``first`` … ``last`` inclusive."""
    tz = zone(timezone)
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    return start, end


def week_of(day: date) -> tuple[date, date]:
    """The Monday and Sunday of ``day``'s ISO week."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def at_local(day: date, clock: str, timezone: str) -> datetime:
    """``HH:MM`` on a local day, as an aware UTC moment."""
    hours, minutes = (int(part) for part in clock.split(":", 1))
    return datetime.combine(day, time(hours, minutes), tzinfo=zone(timezone)).astimezone(UTC)


def add_business_days(day: date, count: int) -> date:
    """The day ``count`` working days (Monday to Friday) after ``day``."""
    added = 0
    while added < count:
        day += timedelta(days=1)
        added += day.weekday() < 5
    return day
