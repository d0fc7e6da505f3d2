"""Days a rule counts and the due dates it sets are days of the business time zone (Asia/Shanghai by
default), and working days skip weekends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from closeloop.automation.actions import _due
from closeloop.automation.metrics import to_unit
from closeloop.core.calendar import add_business_days

# 17:30 UTC on Friday 27 November 2026 is 01:30 on Saturday 28 November in Shanghai
FRIDAY_EVENING_UTC = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)


def test_today_and_due_dates_are_shanghai_days() -> None:
    assert _due({"due": "today"}, FRIDAY_EVENING_UTC) == date(2026, 11, 28)
    assert _due({"due_in": {"value": 3, "unit": "day"}}, FRIDAY_EVENING_UTC) == date(2026, 12, 1)
    # three working days after Saturday 28 November: Monday 30, Tuesday 1, Wednesday 2 December
    assert _due({"due_in": {"value": 3, "unit": "business_day"}}, FRIDAY_EVENING_UTC) == date(2026, 12, 2)
    assert _due({}, FRIDAY_EVENING_UTC) is None


def test_working_days_between_two_moments_are_counted_in_shanghai() -> None:
    # Thursday 09:00 Shanghai → the moment above (Saturday 01:30 Shanghai): one working day (Friday)
    start = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    assert to_unit(FRIDAY_EVENING_UTC - start, "business_day", start=start) == 1.0
    # in UTC both ends fall on Thursday and Friday, so the count does not depend on where it is read
    monday = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Monday 09:00 Shanghai
    assert to_unit(monday - start, "business_day", start=start) == 2.0  # Friday and Monday


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), st.integers(min_value=0, max_value=60))
def test_adding_working_days_lands_on_a_working_day_after_exactly_that_many(day: date, count: int) -> None:
    result = add_business_days(day, count)
    between = [day + timedelta(days=n) for n in range(1, (result - day).days + 1)]
    assert sum(d.weekday() < 5 for d in between) == count
    if count:
        assert result.weekday() < 5
    else:
        assert result == day
