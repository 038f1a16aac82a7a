"""SLA timers under faults, with real processes on PostgreSQL: the leader killed with
SIGKILL just before its deadlines (the standby fires each miss once; the old leader,
restarted, stands by), and every process down across the deadlines (each miss fires
once when they are back)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from events import clock
from events.model import Event
from sla.model import SLA
from sla.store import SLAStore
from tests.faults.conftest import Rig
from tests.faults.processes import Tripwire
from tests.support import eventually
from tripwire.database import create_engine

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(150)]

RUNS = 20
MISSED = "tripwire.sla.missed"
ETL = {
    "name": "etl-within-6s",
    "kind": "duration",
    "start": ["prefect.flow-run.Running"],
    "expect": ["prefect.flow-run.Completed"],
    "for_each": ["prefect.resource.id"],
    "within": "6s",
}


async def apply_sla(rig: Rig, definition: dict[str, Any]) -> None:
    db = create_engine(rig.dsn.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        await SLAStore(db).apply([TypeAdapter(SLA).validate_python(definition)])
    finally:
        await db.dispose()


async def start_runs(rig: Rig, api: Tripwire, prefix: str) -> None:
    """RUNS flow runs go Running now; wait until each has its window."""
    runs = [
        Event(
            occurred=clock.now(),
            event="prefect.flow-run.Running",
            resource={"prefect.resource.id": f"prefect.flow-run.{prefix}-{n}"},
        ).model_dump(mode="json")
        for n in range(RUNS)
    ]
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
        assert (await client.post("/api/events", json=runs)).status_code == 202

    async def windows_open() -> bool:
        count = await rig.probe.conn.fetchval("SELECT count(*) FROM sla_windows")
        return bool(count == RUNS)

    await eventually(windows_open, 5, f"{RUNS} windows open")


async def missed_once_each(rig: Rig, prefix: str) -> list[dict[str, Any]]:
    """Wait for RUNS misses and a quiet bus; every run missed exactly once."""

    async def all_missed() -> bool:
        return await rig.probe.count(MISSED) >= RUNS

    await eventually(all_missed, 30, f"{RUNS} misses")

    await eventually(rig.probe.drained, 30, "outbox and consumers drained")
    bodies = await rig.probe.bodies(MISSED)
    keys = sorted(b["payload"]["key"]["prefect.resource.id"] for b in bodies)
    assert keys == sorted(f"prefect.flow-run.{prefix}-{n}" for n in range(RUNS))
    return bodies


async def leads(process: Tripwire) -> bool:
    async with httpx.AsyncClient(timeout=2) as client:
        report = (await client.get(process.url + "/api/health")).json()
    return bool(report["timers"]["leader"])


async def test_the_standby_fires_each_miss_once_when_the_leader_is_killed(rig: Rig) -> None:
    await apply_sla(rig, ETL)
    api, worker = rig.api(), rig.worker()
    leader = rig.lab.tripwire("sla", rig.env())
    await asyncio.gather(api.wait_healthy(), worker.wait_healthy(), leader.wait_healthy())
    await eventually(lambda: leads(leader), 15, "the first sla process leads")
    standby = rig.lab.tripwire("sla", rig.env())
    await standby.wait_healthy()
    assert not await leads(standby)

    started = time.monotonic()
    await start_runs(rig, api, "fault")
    assert time.monotonic() - started < 6, "the deadlines passed before the kill"
    leader.kill()  # just before the deadlines

    bodies = await missed_once_each(rig, "fault")
    assert not any(b["payload"]["late"] for b in bodies)  # within a poll, not a catch-up
    assert await leads(standby)
    leader.start()  # back, as a standby
    await leader.wait_healthy()
    assert not await leads(leader)
    assert await rig.probe.count(MISSED) == RUNS


async def test_misses_that_fell_while_everything_was_down_fire_once_after(rig: Rig) -> None:
    await apply_sla(rig, {**ETL, "within": "2s"})
    api, worker, sla = rig.api(), rig.worker(), rig.lab.tripwire("sla", rig.env())
    await asyncio.gather(api.wait_healthy(), worker.wait_healthy(), sla.wait_healthy())
    await start_runs(rig, api, "down")
    for process in (sla, worker, api):
        process.kill()
    assert await rig.probe.count(MISSED) == 0, "a miss fired before the engine went down"
    due = await rig.probe.conn.fetchval("SELECT max(due) FROM sla_windows")

    async def past_the_deadlines() -> bool:  # nothing runs: only the wall clock moves
        return bool(clock.now() > due)

    await eventually(past_the_deadlines, 10, "the deadlines passed")
    for process in (api, worker, sla):
        process.start()
    await asyncio.gather(api.wait_healthy(), worker.wait_healthy(), sla.wait_healthy())
    await missed_once_each(rig, "down")
