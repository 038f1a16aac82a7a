"""Deadline calendars: the instants a cron expression names in a time zone, minus holidays.

APScheduler's `CronTrigger` does the cron maths, but on wall-clock times: the trigger runs
in UTC over local times written as if they were UTC, where no daylight-saving change
exists, and this module turns each wall time into an instant itself. Run in the zone
directly, APScheduler 3.11 returns a wall time that occurs twice (fall-back) twice and then
keeps returning the second one, so it cannot be iterated, and it resolves a wall time that
does not exist (spring-forward) inconsistently. The rules here:

- a wall time that occurs twice is a deadline once, at its first occurrence (summer time):
  09:00 Europe/Berlin is 07:00 UTC in summer and 08:00 UTC in winter; 02:30 on the
  fall-back day is 00:30 UTC only;
- a wall time that does not exist is a deadline at the first instant after the gap: 02:30
  (and 02:00) Europe/Berlin on the spring-forward day are 03:00 CEST (01:00 UTC), once.

Deadlines are always aware UTC datetimes; `skip_dates` are dates in the calendar's zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

_TICK = timedelta(microseconds=1)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # any fixed instant, to check a cron ever matches
_SEARCH_LIMIT = timedelta(days=366 * 30)  # how far back previous_deadline looks


class Calendar:
    """The deadlines of a 5-field cron expression in an IANA time zone, skipping holidays."""

    def __init__(self, cron: str, timezone: str = "UTC", skip_dates: Iterable[date] = ()) -> None:
        self.cron = cron
        self.zone = ZoneInfo(timezone)
        self.skip_dates = frozenset(skip_dates)
        self._trigger = CronTrigger.from_crontab(cron, timezone=UTC)

    def __repr__(self) -> str:
        return f"Calendar({self.cron!r}, {self.zone.key!r}, {sorted(self.skip_dates)!r})"

    def next_deadline(self, after: datetime) -> datetime:
        """The first deadline strictly after `after` (aware), in UTC."""
        after = _utc(after)
        wall = self._wall(after)
        while True:
            wall = self._next_wall(wall)
            if wall.date() not in self.skip_dates and (instant := self._instant(wall)) > after:
                return instant

    def previous_deadline(self, before: datetime) -> datetime:
        """The last deadline strictly before `before` (aware), in UTC."""
        before = _utc(before)
        span = timedelta(hours=1)
        while span <= _SEARCH_LIMIT:
            found = None
            wall = self._wall(before) - span
            while (instant := self._instant(wall := self._next_wall(wall))) < before:
                if wall.date() not in self.skip_dates:
                    found = instant
            if found is not None:
                return found
            span *= 2
        raise ValueError(f"{self.cron!r} has no deadline in the 30 years before {before}")

    def deadlines_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Every deadline after `start` up to and including `end`, oldest first (catch-up)."""
        found: list[datetime] = []
        deadline = self.next_deadline(start)
        while deadline <= end:
            found.append(deadline)
            deadline = self.next_deadline(deadline)
        return found

    def _wall(self, instant: datetime) -> datetime:
        """The local wall time of an instant, written as UTC."""
        return instant.astimezone(self.zone).replace(tzinfo=UTC, fold=0)

    def _next_wall(self, after: datetime) -> datetime:
        """The cron's first wall time strictly after `after` (both written as UTC)."""
        found: datetime | None = self._trigger.get_next_fire_time(None, after + _TICK)
        if found is None:
            raise ValueError(f"{self.cron!r} names no time after {after:%Y-%m-%d %H:%M}")
        return found

    def _instant(self, wall: datetime) -> datetime:
        """The instant of a wall time: its first occurrence, or the end of a gap it falls in."""
        local = wall.replace(tzinfo=self.zone)  # fold=0: the first of two occurrences
        instant = local.astimezone(UTC)
        if self._wall(instant) == wall:
            return instant
        # In the gap: fold=0 used the offset before it (too late), fold=1 the one after it
        # (too early); the change lies between the two. Offsets change on whole seconds.
        early = int(local.replace(fold=1).timestamp())
        late = int(instant.timestamp())
        after_change = datetime.fromtimestamp(late, self.zone).utcoffset()
        while late - early > 1:
            middle = (early + late) // 2
            if datetime.fromtimestamp(middle, self.zone).utcoffset() == after_change:
                late = middle
            else:
                early = middle
        return datetime.fromtimestamp(late, UTC)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{value} has no time zone; deadlines compare aware datetimes")
    return value.astimezone(UTC)


def checked_cron(cron: str, example: str) -> Calendar:
    """The calendar of a cron expression a person wrote, or a ValueError that says what to
    change (`example` shows a good one)."""
    try:
        calendar = Calendar(cron)
    except ValueError as exc:
        raise ValueError(
            f"is not a cron expression ({exc}); write 5 fields: minute hour "
            f"day-of-month month day-of-week, e.g. {example}"
        ) from None
    _, _, day, _, weekday = cron.split()
    if day != "*" and weekday != "*":
        # cron fires when either matches, APScheduler only when both do.
        raise ValueError(
            "restricts both the day of the month and the day of the week; restrict one, "
            "since cron and the scheduler disagree on what both mean"
        )
    try:
        calendar.next_deadline(_EPOCH)
    except ValueError:
        raise ValueError("never matches a date (such as 30 February)") from None
    return calendar


def checked_zone(name: str) -> str:
    """`name` when it is an IANA time zone, else a ValueError that says what to write."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a known IANA time zone; use a name like Europe/Berlin, "
            "America/New_York or UTC"
        ) from None
    return name
