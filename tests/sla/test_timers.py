"""The timer: back-to-back passes while more is due, and wake-ups set from inside a pass
(the timer's own job) are kept, not skipped as "already running"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from events import clock
from sla.timers import MAX_PASSES, DueTimer


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
        await timer.stop()
    assert len(calls) == 3


async def test_stop_lets_a_pass_under_way_finish_and_starts_none_after() -> None:
    # The engine closes the database right after stopping the timer: a pass cancelled
    # inside a SQLite statement could hang its connection's close.
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[datetime] = []

    async def due(now: datetime) -> datetime | None:
        started.set()
        await release.wait()
        finished.append(now)
        return datetime.now(UTC)  # more due at once: a pass that is not stopped runs on

    timer = DueTimer(due, poll=timedelta(hours=1))
    timer.start()  # the first pass runs at start
    async with asyncio.timeout(5):
        await started.wait()
    stopping = asyncio.create_task(timer.stop())
    await asyncio.sleep(0)
    assert not stopping.done()  # waits for the pass
    release.set()
    async with asyncio.timeout(5):
        await stopping
    assert len(finished) == MAX_PASSES  # not cancelled: ran its back-to-back passes out
    count = len(finished)
    timer.wake_at(datetime.now(UTC))  # stopped: nothing is scheduled any more
    await asyncio.sleep(0.05)
    assert len(finished) == count


async def test_stop_cancels_a_pass_that_outlasts_its_timeout() -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def due(now: datetime) -> datetime | None:
        started.set()
        try:
            await asyncio.Event().wait()  # never ends by itself
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return None

    timer = DueTimer(due, poll=timedelta(hours=1))
    timer.start()
    async with asyncio.timeout(5):
        await started.wait()
        await timer.stop(timeout=0.05)
        while not cancelled:
            await asyncio.sleep(0)
    assert cancelled == [True]
