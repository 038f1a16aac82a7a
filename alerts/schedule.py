"""Recurring maintenance windows: a cron expression read in a time zone says when each
window starts, and every window lasts the same `duration`.

    schedule: {cron: "0 2 * * SUN", timezone: "Europe/Berlin", duration: 3h}

Starts are the deadlines of an SLA calendar (sla.calendar.Calendar), so windows follow
the zone's wall clock and its rules at daylight-saving changes:

- a start on a wall time that occurs twice (the fall-back day) starts one window, at the
  first occurrence: 02:30 Europe/Berlin on 2027-10-31 is 00:30 UTC only;
- a start on a wall time that does not exist (the spring-forward day) starts the window at
  the end of the gap: 02:30 Europe/Berlin on 2027-03-28 starts at 03:00 CEST (01:00 UTC).
  (APScheduler run in the zone itself would say 03:30 CEST, reading 02:30 with the
  offset from before the change; the SLA calendar explains why it does not run it so.)

`duration` is elapsed time: a 3h window from 01:00 on the spring-forward day lasts 3
hours, to 05:00 CEST by the clock. Windows that overlap or touch are one window.

Days of the week are numbered as crontab numbers them, 0 and 7 Sunday; APScheduler 3
numbers them from Monday, so numbers are rewritten as names before it reads them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator

from events.durations import Duration
from sla.calendar import Calendar, checked_cron, checked_zone

MAX_DURATION = timedelta(days=7)
_TICK = timedelta(microseconds=1)
_MINUTE = timedelta(minutes=1)
# How far windows that run on back to back are followed (a start every hour, each 2 hours
# long): at most so many windows, so far from the time asked about. A longer chain is
# reported cut there, and a timer set for that end just asks again then: such a chain may
# never end (every minute, 1 minute long), and each window costs cron searches.
_CHAIN_STEPS = 1000
_CHAIN_SPAN = timedelta(days=366)

# Index = crontab's number for the day (7 is Sunday again).
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_APSCHEDULER_ORDER = (1, 2, 3, 4, 5, 6, 0)  # APScheduler's week starts on Monday
_DAY_ITEM = re.compile(r"(?P<first>\*|\w+)(?:-(?P<last>\w+))?(?:/(?P<step>\d+))?", re.ASCII)


class Recurrence(BaseModel):
    """A window that recurs: it starts at each time of `cron` in `timezone` and lasts
    `duration`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str = Field(
        description="5 fields: minute hour day-of-month month day-of-week, when each window "
        "starts, e.g. 0 2 * * SUN (days of the week 0-7 from Sunday, or names)."
    )
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Berlin.")
    duration: Duration = Field(
        description="How long each window lasts, elapsed time, e.g. 3h; at most 7d."
    )

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        checked_cron(apscheduler_crontab(value), "0 2 * * SUN")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        return checked_zone(value)

    @field_validator("duration")
    @classmethod
    def _duration_in_range(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0")
        if value > MAX_DURATION:
            raise ValueError(f"may be at most 7 days (7d), not {value}")
        return value

    @cached_property
    def calendar(self) -> Calendar:
        """When windows start."""
        return Calendar(apscheduler_crontab(self.cron), self.timezone)


def active_window(rec: Recurrence, at: datetime) -> tuple[datetime, datetime] | None:
    """The window (start, end) with start <= `at` < end, in UTC, or None outside every
    window. Windows that overlap or touch are merged into one, followed for at most 1,000
    windows or a year each way: a longer run is reported cut there."""
    at = _utc(at)
    start = _open_start(rec, at)
    if start is None:
        return None
    return _chain_start(rec, at), _chain_end(rec, start, at)


def next_change(rec: Recurrence, at: datetime) -> datetime:
    """When the recurrence next turns on or off after `at` (UTC): the end of the window
    `at` is in, else the next start."""
    at = _utc(at)
    start = _open_start(rec, at)
    if start is None:
        return rec.calendar.next_deadline(at)
    return _chain_end(rec, start, at)


def _open_start(rec: Recurrence, at: datetime) -> datetime | None:
    """A start whose window holds `at` (one in (at - duration, at]), or None; a late one,
    so that walks forward from it take long strides. It is the first start within a reach
    before `at` that doubles from a minute (cron's unit) up to the duration, so one start
    costs a few cron searches however many starts the duration spans."""
    reach = _MINUTE
    while True:
        reach = min(reach, rec.duration)
        start = rec.calendar.next_deadline(at - reach)
        if start <= at:
            return start
        if reach == rec.duration:
            return None
        reach *= 2


def _chain_start(rec: Recurrence, at: datetime) -> datetime:
    """Back from `at`, over windows that reach the start of the next one."""
    start, limit = at, at - _CHAIN_SPAN
    for _ in range(_CHAIN_STEPS):
        # The earliest start at most a duration before: its window reaches `start`.
        earlier = rec.calendar.next_deadline(start - rec.duration - _TICK)
        if earlier >= start or start <= limit:
            break
        start = earlier
    return start


def _chain_end(rec: Recurrence, start: datetime, at: datetime) -> datetime:
    """On from the window that `start` opens, over windows starting before the last ends."""
    end, limit = start + rec.duration, at + _CHAIN_SPAN
    for _ in range(_CHAIN_STEPS):
        later = _open_start(rec, end)
        if later is None or end >= limit:
            break
        end = later + rec.duration
    return end


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{value} has no time zone; windows compare aware datetimes")
    return value.astimezone(UTC)


def apscheduler_crontab(cron: str) -> str:
    """The crontab expression as APScheduler 3 should read it: a day-of-week field with
    numbers (crontab's, 0 and 7 Sunday), ranges, lists or steps written out as day names,
    `0 2 * * 1-5` as `0 2 * * mon,tue,wed,thu,fri`. Other fields, a `*` day of week, and
    expressions without 5 fields (for APScheduler to refuse) come back unchanged."""
    fields = cron.split()
    if len(fields) != 5 or fields[4] == "*":
        return cron
    days: set[int] = set()
    for item in fields[4].split(","):
        days |= _cron_days(item)
    names = ",".join(_CRON_DAYS[day] for day in _APSCHEDULER_ORDER if day in days)
    return " ".join([*fields[:4], names])


def _cron_days(item: str) -> set[int]:
    """The days (0 Sunday to 6 Saturday) one comma-separated item of the field names."""
    found = _DAY_ITEM.fullmatch(item)
    if found is None:
        raise ValueError(f"day of week {item!r} is not a day, a range or a step")
    first, last, step = found["first"], found["last"], found["step"]
    if first == "*":
        if last is not None:
            raise ValueError(f"day of week {item!r}: * cannot start a range")
        low, high = 0, 6
    else:
        low = _cron_day(first, ends_range=False)
        # Without an end, a step runs to the end of the week (as cron's `1/2` does).
        high = _cron_day(last, ends_range=True) if last else (6 if step else low)
    if low > high:
        raise ValueError(f"day of week {item!r}: the range runs backwards")
    every = int(step) if step else 1
    if every < 1:
        raise ValueError(f"day of week {item!r}: the step must be at least 1")
    return {day % 7 for day in range(low, high + 1, every)}


def _cron_day(token: str, *, ends_range: bool) -> int:
    if token.isdigit():
        number = int(token)
        if number > 7:
            raise ValueError(f"day of week {token} is not 0-7 (0 and 7 are Sunday)")
        return number
    name = token.lower()
    if name not in _CRON_DAYS:
        raise ValueError(f"{token!r} is not a day of the week (sun, mon, ... sat, or 0-7)")
    # `fri-sun` means Friday to Sunday: Sunday ends the week as 7.
    return 7 if ends_range and name == "sun" else _CRON_DAYS.index(name)
