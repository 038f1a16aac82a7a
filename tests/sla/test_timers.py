"""The timer: back-to-back passes while more is due, and wake-ups set from inside a pass
(the timer's own job) are kept, not skipped as "already running"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from events import clock
from sla.timers import DueTimer


async def test_a_backlog_is_worked_off_in_one_run() -> None:
    calls: list[datetime] = []

    async def due(now: datetime) -> datetime | None:
        calls.append(now)
        return now if len(calls) < 3 else None  # more due at once, twice

    with clock.frozen_clock(datetime(2026, 11, 23, tzinfo=UTC)):
        await DueTimer(due).run()
    assert len(calls) == 3


async def test_a_wake_up_set_while_the_wake_up_job_runs_is_kept() -> None:
    calls: list[datetime] = []
    twice = asyncio.Event()

    async def due(now: datetime) -> datetime | None:
        calls.append(now)
        if len(calls) == 3:
            twice.set()
        return datetime.now(UTC) + timedelta(milliseconds=50) if len(calls) < 3 else None

    timer = DueTimer(due, poll=timedelta(hours=1))  # the poll never comes to the rescue
    timer.start()  # runs once at start: schedules the wake-up in 50 ms
    try:
        async with asyncio.timeout(5):
            await twice.wait()  # the wake-up ran and scheduled the next from inside itself
    finally:
        timer.stop()
    assert len(calls) == 3
