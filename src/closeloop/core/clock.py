"""One clock for the whole product, so tests can move time without sleeping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return _now()


@contextmanager
def frozen_at(moment: datetime) -> Iterator[Callable[[timedelta], None]]:
    """Freeze the clock at ``moment`` for the block; the yielded function advances it."""
    global _now
    if moment.tzinfo is None:
        raise ValueError("frozen_at needs an aware datetime")
    current = [moment.astimezone(UTC)]
    previous = _now

    def advance(delta: timedelta) -> None:
        current[0] = current[0] + delta

    _now = lambda: current[0]  # noqa: E731
    try:
        yield advance
    finally:
        _now = previous


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
