"""Recurring maintenance windows: in and out of a window, across midnight and across
Berlin's daylight-saving changes of 2027 (28 March and 31 October), crontab's Sunday 0 and
7, and the mistakes refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.schedule import Recurrence, active_window, apscheduler_crontab, next_change
from tests.properties import SETTINGS

BERLIN = ZoneInfo("Europe/Berlin")
TICK = timedelta(microseconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def every(cron: str, duration: str, timezone: str = "Europe/Berlin") -> Recurrence:
    return Recurrence(cron=cron, timezone=timezone, duration=duration)


def changes(rec: Recurrence, after: datetime, count: int) -> list[datetime]:
    found = []
    for _ in range(count):
        after = next_change(rec, after)
        found.append(after)
    return found


SUNDAY_NIGHTS = every("0 2 * * SUN", "3h")  # the example: 02:00-05:00 Berlin time


def test_the_example_loads_and_writes_back() -> None:
    rec = Recurrence.model_validate(
        {"cron": "0 2 * * SUN", "timezone": "Europe/Berlin", "duration": "3h"}
    )
    assert rec == SUNDAY_NIGHTS
    assert rec.duration == timedelta(hours=3)
    assert rec.model_dump(mode="json") == {
        "cron": "0 2 * * SUN",
        "timezone": "Europe/Berlin",
        "duration": 10800.0,
    }
    assert Recurrence.model_validate(rec.model_dump(mode="json")) == rec
    assert Recurrence(cron="0 2 * * *", duration="1h").timezone == "UTC"


def test_inside_and_outside_a_window_in_winter() -> None:
    # Sunday 3 January 2027: 02:00 CET is 01:00 UTC.
    start, end = utc(2027, 1, 3, 1), utc(2027, 1, 3, 4)
    assert active_window(SUNDAY_NIGHTS, start) == (start, end)
    assert active_window(SUNDAY_NIGHTS, utc(2027, 1, 3, 3, 59)) == (start, end)
    assert active_window(SUNDAY_NIGHTS, end - TICK) == (start, end)
    assert active_window(SUNDAY_NIGHTS, start - TICK) is None
    assert active_window(SUNDAY_NIGHTS, end) is None  # the end is outside
    assert active_window(SUNDAY_NIGHTS, utc(2027, 1, 4, 2)) is None  # Monday


def test_a_summer_window_keeps_its_local_time() -> None:
    # Sunday 4 July 2027: 02:00 CEST is 00:00 UTC.
    assert active_window(SUNDAY_NIGHTS, utc(2027, 7, 4, 1)) == (utc(2027, 7, 4), utc(2027, 7, 4, 3))


def test_next_change_is_the_next_start_or_the_end() -> None:
    assert next_change(SUNDAY_NIGHTS, utc(2027, 1, 1, 12)) == utc(2027, 1, 3, 1)
    assert next_change(SUNDAY_NIGHTS, utc(2027, 1, 3, 1)) == utc(2027, 1, 3, 4)
    assert next_change(SUNDAY_NIGHTS, utc(2027, 1, 3, 2)) == utc(2027, 1, 3, 4)
    assert next_change(SUNDAY_NIGHTS, utc(2027, 1, 3, 4)) == utc(2027, 1, 10, 1)
    assert next_change(SUNDAY_NIGHTS, utc(2027, 1, 3, 1) - TICK) == utc(2027, 1, 3, 1)


def test_a_window_across_midnight() -> None:
    friday_nights = every("30 22 * * FRI", "4h")  # Friday 22:30 to Saturday 02:30, Berlin
    start, end = utc(2027, 1, 8, 21, 30), utc(2027, 1, 9, 1, 30)
    saturday_one_am = datetime(2027, 1, 9, 1, tzinfo=BERLIN)
    assert active_window(friday_nights, saturday_one_am) == (start, end)
    assert next_change(friday_nights, saturday_one_am) == end
    assert active_window(friday_nights, end) is None
    assert next_change(friday_nights, end) == utc(2027, 1, 15, 21, 30)


def test_times_come_back_in_utc() -> None:
    window = active_window(SUNDAY_NIGHTS, datetime(2027, 1, 3, 3, tzinfo=BERLIN))
    assert window is not None
    assert all(moment.tzinfo is UTC for moment in window)
    assert next_change(SUNDAY_NIGHTS, datetime(2027, 1, 3, 3, tzinfo=BERLIN)).tzinfo is UTC


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        active_window(SUNDAY_NIGHTS, datetime(2027, 1, 3, 2))
    with pytest.raises(ValueError, match="has no time zone"):
        next_change(SUNDAY_NIGHTS, datetime(2027, 1, 3, 2))


def test_spring_forward_a_start_in_the_gap_is_the_end_of_the_gap() -> None:
    """On 28 March 2027 Berlin's clocks go from 02:00 CET to 03:00 CEST: 02:30 does not
    exist, and the window starts when the gap ends, 03:00 CEST (01:00 UTC), for its whole
    3 hours. The days around keep 02:30 local."""
    rec = every("30 2 * * *", "3h")
    assert active_window(rec, utc(2027, 3, 28, 2)) == (utc(2027, 3, 28, 1), utc(2027, 3, 28, 4))
    assert changes(rec, utc(2027, 3, 26, 12), 6) == [
        utc(2027, 3, 27, 1, 30),  # 02:30 CET
        utc(2027, 3, 27, 4, 30),
        utc(2027, 3, 28, 1),  # 03:00 CEST: the gap's end
        utc(2027, 3, 28, 4),
        utc(2027, 3, 29, 0, 30),  # 02:30 CEST
        utc(2027, 3, 29, 3, 30),
    ]
    # 02:00 on the day is in the gap too, and starts at the same instant.
    assert active_window(SUNDAY_NIGHTS, utc(2027, 3, 28, 1)) == (
        utc(2027, 3, 28, 1),
        utc(2027, 3, 28, 4),
    )


def test_spring_forward_apscheduler_in_the_zone_would_start_half_an_hour_later() -> None:
    """What the module docstring contrasts with: APScheduler reading 02:30 in the zone
    takes the offset before the change, 02:30 CET, which is 03:30 CEST."""
    trigger = CronTrigger.from_crontab("30 2 * * *", timezone="Europe/Berlin")
    fired = trigger.get_next_fire_time(None, utc(2027, 3, 27, 12))
    assert fired.astimezone(UTC) == utc(2027, 3, 28, 1, 30)


def test_a_window_over_the_change_lasts_its_duration_in_elapsed_time() -> None:
    rec = every("0 1 * * SUN", "3h")  # 01:00 CET, then the clocks skip an hour
    window = active_window(rec, utc(2027, 3, 28, 1))
    assert window is not None
    assert window == (utc(2027, 3, 28), utc(2027, 3, 28, 3))
    # 3 hours, though the wall clock reads 01:00 to 05:00.
    assert window[1].astimezone(BERLIN).hour == 5


def test_fall_back_a_repeated_start_opens_one_window() -> None:
    """On 31 October 2027 Berlin's clocks go from 03:00 CEST back to 02:00 CET: 02:30
    happens twice, at 00:30 and 01:30 UTC, and opens one window, at the first."""
    rec = every("30 2 * * *", "3h")
    window = (utc(2027, 10, 31, 0, 30), utc(2027, 10, 31, 3, 30))
    assert active_window(rec, utc(2027, 10, 31, 0, 30)) == window
    assert active_window(rec, utc(2027, 10, 31, 1, 30)) == window  # the second 02:30
    assert changes(rec, utc(2027, 10, 30, 12), 4) == [
        utc(2027, 10, 31, 0, 30),
        utc(2027, 10, 31, 3, 30),
        utc(2027, 11, 1, 1, 30),  # 02:30 CET the next day
        utc(2027, 11, 1, 4, 30),
    ]
    # A window shorter than the repeated hour shows there is no second one.
    short = every("30 2 * * *", "30m")
    assert active_window(short, utc(2027, 10, 31, 1, 30)) is None
    assert changes(short, utc(2027, 10, 30, 12), 3) == [
        utc(2027, 10, 31, 0, 30),
        utc(2027, 10, 31, 1),
        utc(2027, 11, 1, 1, 30),
    ]


@pytest.mark.parametrize("weekday", ["0", "7", "SUN", "sun", "6-7", "0,3"])
def test_crontabs_sunday_is_0_and_7(weekday: str) -> None:
    rec = every(f"0 2 * * {weekday}", "3h")
    assert active_window(rec, utc(2027, 1, 3, 2)) is not None  # Sunday
    assert active_window(rec, utc(2027, 1, 4, 2)) is None  # Monday, APScheduler's 0


def test_weekdays_1_to_5_are_monday_to_friday() -> None:
    rec = every("0 2 * * 1-5", "1h")
    starts = changes(rec, utc(2027, 1, 2, 12), 12)[::2]  # from Saturday 2 January
    assert [start.astimezone(BERLIN).strftime("%a %H:%M") for start in starts] == [
        "Mon 02:00",
        "Tue 02:00",
        "Wed 02:00",
        "Thu 02:00",
        "Fri 02:00",
        "Mon 02:00",
    ]


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 2 * * 0", "0 2 * * sun"),
        ("0 2 * * 7", "0 2 * * sun"),
        ("0 2 * * 1-5", "0 2 * * mon,tue,wed,thu,fri"),
        ("0 2 * * 5-7", "0 2 * * fri,sat,sun"),
        ("0 2 * * 0,6", "0 2 * * sat,sun"),
        ("0 2 * * */2", "0 2 * * tue,thu,sat,sun"),  # crontab: 0, 2, 4, 6 from Sunday
        ("0 2 * * 1-5/2", "0 2 * * mon,wed,fri"),
        ("0 2 * * 1/3", "0 2 * * mon,thu"),
        ("0 2 * * MON-FRI", "0 2 * * mon,tue,wed,thu,fri"),
        ("0 2 * * fri-sun", "0 2 * * fri,sat,sun"),
        ("0 2 * * *", "0 2 * * *"),
        ("*/5 9-17 1 1,7 *", "*/5 9-17 1 1,7 *"),
        ("0 2 * *", "0 2 * *"),  # left for APScheduler to refuse
    ],
)
def test_apscheduler_crontab_writes_days_as_names(cron: str, expected: str) -> None:
    assert apscheduler_crontab(cron) == expected


@pytest.mark.parametrize(
    ("given", "loc", "message"),
    [
        ({"cron": "0 2 * *"}, "cron", "Wrong number of fields; got 4, expected 5"),
        ({"cron": "0 2 * * * *"}, "cron", "Wrong number of fields; got 6, expected 5"),
        ({"cron": "61 2 * * *"}, "cron", "is not a cron expression"),
        ({"cron": "0 2 * * 8"}, "cron", "day of week 8 is not 0-7 (0 and 7 are Sunday)"),
        ({"cron": "0 2 * * 5-1"}, "cron", "day of week '5-1': the range runs backwards"),
        ({"cron": "0 2 * * FRX"}, "cron", "'FRX' is not a day of the week"),
        ({"cron": "0 2 * * */0"}, "cron", "the step must be at least 1"),
        ({"cron": "0 2 1 * MON"}, "cron", "restricts both the day of the month and the day"),
        ({"cron": "0 0 30 2 *"}, "cron", "never matches a date"),
        ({"timezone": "Europe/Berln"}, "timezone", "'Europe/Berln' is not a known IANA"),
        ({"timezone": "../etc/passwd"}, "timezone", "is not a known IANA time zone"),
        ({"duration": 0}, "duration", "must be longer than 0"),
        ({"duration": "0s"}, "duration", "must be longer than 0"),
        ({"duration": -60}, "duration", "must be longer than 0"),
        ({"duration": "8d"}, "duration", "may be at most 7 days (7d)"),
        ({"duration": "soon"}, "duration", "valid timedelta"),
        ({"every": "week"}, "every", "Extra inputs are not permitted"),
    ],
)
def test_mistakes_are_refused_naming_the_field(
    given: dict[str, Any], loc: str, message: str
) -> None:
    data = {"cron": "0 2 * * SUN", "timezone": "Europe/Berlin", "duration": "3h", **given}
    with pytest.raises(ValidationError) as error:
        Recurrence.model_validate(data)
    (problem,) = error.value.errors()
    assert problem["loc"] == (loc,)
    assert message in problem["msg"]


def test_seven_days_is_the_longest_window() -> None:
    assert every("0 2 * * SUN", "7d").duration == timedelta(days=7)
    # A week long and weekly: the windows touch and make one.
    window = active_window(every("0 2 * * SUN", "7d"), utc(2027, 1, 5))
    assert window is not None
    assert window[0] < utc(2027, 1, 3, 1)
    assert window[1] > utc(2027, 1, 10, 1)


def test_overlapping_and_touching_windows_are_one() -> None:
    overlapping = every("0 9-11 * * *", "90m", "UTC")  # 09:00-10:30, 10:00-11:30, 11:00-12:30
    assert active_window(overlapping, utc(2027, 1, 4, 10, 45)) == (
        utc(2027, 1, 4, 9),
        utc(2027, 1, 4, 12, 30),
    )
    assert next_change(overlapping, utc(2027, 1, 4, 9)) == utc(2027, 1, 4, 12, 30)
    touching = every("0 9-11 * * *", "1h", "UTC")
    assert active_window(touching, utc(2027, 1, 4, 10)) == (utc(2027, 1, 4, 9), utc(2027, 1, 4, 12))
    assert changes(touching, utc(2027, 1, 4, 8), 3) == [
        utc(2027, 1, 4, 9),
        utc(2027, 1, 4, 12),
        utc(2027, 1, 5, 9),
    ]


def test_windows_that_never_end_are_cut_and_asked_again() -> None:
    always = every("* * * * *", "1m", "UTC")
    at = utc(2027, 1, 4, 12)
    window = active_window(always, at)
    assert window is not None
    start, end = window
    assert start < at < end
    assert timedelta(hours=1) < end - at < timedelta(days=2)  # 1,000 minutes on
    assert next_change(always, at) == end
    assert active_window(always, end) is not None  # still on: the timer asks again


# Properties: over random instants of 2027, the window agrees with a plain scan of the
# starts, and nothing changes between `at` and next_change.
RECURRENCES = [
    SUNDAY_NIGHTS,
    every("30 2 * * *", "3h"),
    every("30 2 * * *", "30m"),
    every("0 1 * * SUN", "3h"),
    every("0 0,4 * * *", "5h"),  # overlapping: one window 00:00-09:00
    every("0 9-17 * * 1-5", "1h"),  # touching
    every("0 2 1 * *", "2d", "America/New_York"),
]
INSTANT = st.datetimes(
    min_value=datetime(2027, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


def on(rec: Recurrence, at: datetime) -> bool:
    return active_window(rec, at) is not None


@SETTINGS
@given(rec=st.sampled_from(RECURRENCES), at=INSTANT)
def test_active_means_a_start_within_a_duration_before(rec: Recurrence, at: datetime) -> None:
    starts = rec.calendar.deadlines_between(at - rec.duration - timedelta(days=1), at)
    assert on(rec, at) is any(start <= at < start + rec.duration for start in starts)


@SETTINGS
@given(rec=st.sampled_from(RECURRENCES), at=INSTANT)
def test_the_window_is_whole(rec: Recurrence, at: datetime) -> None:
    window = active_window(rec, at)
    if window is None:
        return
    start, end = window
    assert start <= at < end
    assert on(rec, start)
    assert on(rec, end - TICK)
    assert not on(rec, start - TICK)
    assert not on(rec, end)


@SETTINGS
@given(rec=st.sampled_from(RECURRENCES), at=INSTANT, fraction=st.floats(0, 1))
def test_nothing_changes_before_next_change(rec: Recurrence, at: datetime, fraction: float) -> None:
    change = next_change(rec, at)
    assert change > at
    assert on(rec, change) is not on(rec, at)
    assert on(rec, change - TICK) is on(rec, at)
    between = at + (change - at) * fraction
    assert on(rec, min(between, change - TICK)) is on(rec, at)
