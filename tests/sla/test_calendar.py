"""Deadline calendars: cron in a time zone, correct across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger

from sla.calendar import Calendar


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def following(calendar: Calendar, after: datetime, count: int) -> list[datetime]:
    found = []
    for _ in range(count):
        after = calendar.next_deadline(after)
        found.append(after)
    return found


def test_nine_in_berlin_is_eight_utc_in_winter_and_seven_in_summer() -> None:
    calendar = Calendar("0 9 * * MON-FRI", "Europe/Berlin")
    # Clocks go forward on Sunday 29 March 2026 and back on Sunday 25 October 2026.
    assert following(calendar, utc(2026, 3, 26, 12), 3) == [
        utc(2026, 3, 27, 8),  # Friday, CET
        utc(2026, 3, 30, 7),  # Monday, CEST
        utc(2026, 3, 31, 7),
    ]
    assert following(calendar, utc(2026, 10, 22, 12), 3) == [
        utc(2026, 10, 23, 7),
        utc(2026, 10, 26, 8),
        utc(2026, 10, 27, 8),
    ]
    new_york = Calendar("0 9 * * *", "America/New_York")  # forward 8 March, back 1 November
    assert following(new_york, utc(2026, 3, 7, 12), 2) == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13)]
    assert following(new_york, utc(2026, 10, 31, 12), 2) == [
        utc(2026, 10, 31, 13),
        utc(2026, 11, 1, 14),
    ]


@pytest.mark.parametrize(
    ("zone", "day", "at_gap_end"),
    [
        ("Europe/Berlin", date(2026, 3, 29), utc(2026, 3, 29, 1)),  # 03:00 CEST
        ("America/New_York", date(2026, 3, 8), utc(2026, 3, 8, 7)),  # 03:00 EDT
    ],
)
def test_a_wall_time_that_does_not_exist_falls_at_the_end_of_the_gap(
    zone: str, day: date, at_gap_end: datetime
) -> None:
    calendar = Calendar("30 2 * * *", zone)
    before = datetime.combine(day, datetime.min.time(), UTC) - timedelta(days=1)
    day_before, on_the_day, day_after = following(calendar, before, 3)
    assert on_the_day == at_gap_end
    assert day_after - on_the_day == timedelta(hours=23, minutes=30)
    assert on_the_day - day_before == timedelta(hours=23, minutes=30)
    # Several wall times in the gap are one deadline, not several.
    half_hours = Calendar("0,30 * * * *", zone)
    assert following(half_hours, at_gap_end - timedelta(minutes=31), 3) == [
        at_gap_end - timedelta(minutes=30),
        at_gap_end,
        at_gap_end + timedelta(minutes=30),
    ]


@pytest.mark.parametrize(
    ("zone", "cron", "first", "next_day"),
    [
        # 02:30 happens in CEST (00:30 UTC) and again in CET (01:30 UTC).
        ("Europe/Berlin", "30 2 * * *", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),
        # 01:30 happens in EDT (05:30 UTC) and again in EST (06:30 UTC).
        ("America/New_York", "30 1 * * *", utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)),
    ],
)
def test_a_wall_time_that_occurs_twice_is_one_deadline_at_its_first(
    zone: str, cron: str, first: datetime, next_day: datetime
) -> None:
    calendar = Calendar(cron, zone)
    assert following(calendar, first - timedelta(hours=12), 2) == [first, next_day]
    assert calendar.next_deadline(first) == next_day  # not the second occurrence
    assert calendar.previous_deadline(next_day) == first
    assert calendar.deadlines_between(first - timedelta(days=1), next_day) == [first, next_day]


def test_every_half_hour_through_the_fall_back_hour_moves_forward() -> None:
    calendar = Calendar("*/30 * * * *", "Europe/Berlin")
    found = following(calendar, utc(2026, 10, 24, 23, 45), 6)
    # 02:00 and 02:30 count in CEST only; after them comes 03:00 CET.
    assert found == [
        utc(2026, 10, 25, 0, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 2, 0),
        utc(2026, 10, 25, 2, 30),
        utc(2026, 10, 25, 3, 0),
        utc(2026, 10, 25, 3, 30),
    ]


def test_apscheduler_in_the_zone_repeats_the_fall_back_hour() -> None:
    """Why the calendar runs the trigger on wall time: in the zone itself, APScheduler 3.11
    returns 02:30 twice on the fall-back day and then keeps returning the second one."""
    trigger = CronTrigger.from_crontab("30 2 * * *", timezone="Europe/Berlin")
    fired = []
    now = utc(2026, 10, 24, 12)
    for _ in range(3):
        now = trigger.get_next_fire_time(None, now + timedelta(microseconds=1))
        fired.append(now.astimezone(UTC))
    assert fired == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 1, 30)]


def test_skip_dates_are_days_in_the_calendars_zone() -> None:
    christmas = date(2026, 12, 25)  # a Friday
    calendar = Calendar("0 9 * * MON-FRI", "Europe/Berlin", [christmas])
    assert calendar.next_deadline(utc(2026, 12, 24, 8)) == utc(2026, 12, 28, 8)
    assert calendar.previous_deadline(utc(2026, 12, 28, 8)) == utc(2026, 12, 24, 8)
    # 00:30 in Berlin on the 25th is still the 24th in UTC, and still skipped.
    early = Calendar("30 0 * * *", "Europe/Berlin", [christmas])
    assert early.next_deadline(utc(2026, 12, 24, 0)) == utc(2026, 12, 25, 23, 30)


def test_deadlines_between_a_week_with_a_holiday() -> None:
    calendar = Calendar("0 9 * * MON-FRI", "Europe/Berlin", [date(2026, 12, 25)])
    monday = utc(2026, 12, 21, 8)
    assert calendar.deadlines_between(monday, monday + timedelta(days=7)) == [
        utc(2026, 12, 22, 8),  # after the start, not at it
        utc(2026, 12, 23, 8),
        utc(2026, 12, 24, 8),
        utc(2026, 12, 28, 8),  # up to and including the end
    ]
    assert calendar.deadlines_between(monday, monday) == []


def test_next_and_previous_are_strict() -> None:
    calendar = Calendar("0 9 * * *", "Europe/Berlin")
    nine = utc(2026, 6, 1, 7)
    assert calendar.next_deadline(nine) == utc(2026, 6, 2, 7)
    assert calendar.next_deadline(nine - timedelta(microseconds=1)) == nine
    assert calendar.previous_deadline(nine) == utc(2026, 5, 31, 7)
    assert calendar.previous_deadline(nine + timedelta(microseconds=1)) == nine
    # Sunday 29 March is summer time by 09:00; Saturday was still winter time.
    assert calendar.previous_deadline(utc(2026, 3, 29, 7)) == utc(2026, 3, 28, 8)
    yearly = Calendar("0 0 1 1 *", "America/New_York")
    assert yearly.previous_deadline(utc(2026, 6, 1)) == utc(2026, 1, 1, 5)


def test_times_must_be_aware() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        Calendar("0 9 * * *").next_deadline(datetime(2026, 1, 1))
