"""Timers at exact instants, for proactive triggers now and SLAs next.

A `DueTimer` keeps one APScheduler job at the earliest instant something is due and runs
the `due` callback then; the callback returns the next instant. A slow poll backs it up,
for windows opened by other processes. Time itself is read through `events.clock`, so
tests move the clock and call `run` instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from events import clock
from events.metrics import TIMER_LAG_SECONDS

log = logging.getLogger("tripwire.timers")

Due = Callable[[datetime], Awaitable[datetime | None]]

WAKE_JOB = "wake"
POLL_JOB = "poll"
MAX_PASSES = 100  # back-to-back passes while more is due (a backlog), before yielding


class DueTimer:
    """Runs `due(now)` when the next instant comes, and at least every `poll`."""

    def __init__(self, due: Due, *, poll: timedelta = timedelta(seconds=5)) -> None:
        self.due = due
        self.poll = poll
        self.next: datetime | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._lock = asyncio.Lock()
        self._passes: set[asyncio.Task[Any]] = set()  # runs under way

    def start(self) -> None:
        """Start the scheduler (in the running event loop) and run once right away."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self.run,
            IntervalTrigger(seconds=self.poll.total_seconds()),
            id=POLL_JOB,
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC),
        )
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop scheduling, and let a pass under way finish before returning: the caller
        closes the database next. APScheduler's shutdown cancels running jobs, and a pass
        cancelled inside a SQLite statement can hang its connection's close, so the
        scheduler is paused first and shut down once the pass is over (or `timeout`)."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.pause()
        if self._passes:
            await asyncio.wait(set(self._passes), timeout=timeout)
        scheduler.shutdown(wait=False)

    def wake_at(self, when: datetime) -> None:
        """Make sure `due` runs at `when` (earlier wake-ups stay)."""
        if self._scheduler is None or (self.next is not None and self.next <= when):
            return
        self.next = when
        self._scheduler.add_job(
            self.run,
            DateTrigger(run_date=when),
            id=WAKE_JOB,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            # Set from inside a running pass (the wake-up job itself): one instance would
            # be skipped as "already running", leaving the next instant to the poll.
            max_instances=2,
        )

    async def run(self) -> None:
        """Run what is due now, again while more is due already, and schedule the next
        wake-up."""
        task = asyncio.current_task()
        if task is not None:
            self._passes.add(task)
            task.add_done_callback(self._passes.discard)
        async with self._lock:
            upcoming: datetime | None = None
            for _ in range(MAX_PASSES):
                now = clock.now()
                if self.next is not None and self.next <= now:  # a scheduled wake-up: late?
                    TIMER_LAG_SECONDS.observe((now - self.next).total_seconds())
                self.next = None
                try:
                    upcoming = await self.due(now)
                except Exception:
                    log.exception("evaluating due timers failed; the next poll tries again")
                    return
                if upcoming is None or upcoming > clock.now():
                    break
        if upcoming is not None:
            self.wake_at(upcoming)
