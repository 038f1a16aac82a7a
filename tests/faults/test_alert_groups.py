"""Grouped notifications under faults, with real processes on PostgreSQL: the timer
process killed with SIGKILL while a group waits out its `wait`; the standby sends the
grouped message once, and the killed one, back as a standby, sends nothing more."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import TypeAdapter

from events import clock
from events.model import Event
from tests.faults.conftest import Rig
from tests.faults.test_sla_leader import leads
from tests.support import eventually
from triggers.automation import Automation
from triggers.repository import AutomationStore
from tripwire.database import create_engine

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(150)]

RUNS = 10


async def apply_grouped(rig: Rig) -> None:
    grouped = {
        "name": "runs-failed-grouped",
        "trigger": {
            "type": "event",
            "expect": ["prefect.flow-run.Failed"],
            "for_each": ["prefect.resource.id"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [
            {
                "type": "call-webhook",
                "url": rig.receiver.url("/grouped"),
                "grouping": {"by": ["automation"], "wait": "4s"},
            }
        ],
    }
    db = create_engine(rig.dsn.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        await AutomationStore(db).apply([TypeAdapter(Automation).validate_python(grouped)])
    finally:
        await db.dispose()


async def test_a_group_waiting_when_its_timer_is_killed_is_sent_once(rig: Rig) -> None:
    await apply_grouped(rig)
    api, worker = rig.api(), rig.worker()
    leader = rig.lab.tripwire("sla", rig.env())
    await asyncio.gather(api.wait_healthy(), worker.wait_healthy(), leader.wait_healthy())
    await eventually(lambda: leads(leader), 15, "the first sla process leads")
    standby = rig.lab.tripwire("sla", rig.env())
    await standby.wait_healthy()

    failures = [
        Event(
            occurred=clock.now(),
            event="prefect.flow-run.Failed",
            resource={"prefect.resource.id": f"prefect.flow-run.killed-{n}"},
        ).model_dump(mode="json")
        for n in range(RUNS)
    ]
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
        assert (await client.post("/api/events", json=failures)).status_code == 202

    async def grouped() -> bool:
        members = await rig.probe.conn.fetchval("SELECT count(*) FROM alert_group_members")
        return bool(members == RUNS)

    await eventually(grouped, 15, f"{RUNS} alerts in the group")
    assert not [r for r in rig.receiver.requests if r.path == "/grouped"]
    leader.kill()  # within the group's wait

    async def sent() -> bool:
        return any(r.path == "/grouped" for r in rig.receiver.requests)

    await eventually(sent, 30, "the grouped message from the standby")
    leader.start()  # back, as a standby
    await leader.wait_healthy()

    await eventually(rig.probe.drained, 30, "outbox and consumers drained")
    (message,) = [r for r in rig.receiver.requests if r.path == "/grouped"]
    notice = message.json()
    assert (notice["status"], notice["total"], notice["firing"]) == ("firing", RUNS, RUNS)
    status, sequence = await rig.probe.conn.fetchrow("SELECT status, sequence FROM alert_groups")
    assert (status, sequence) == ("firing", 1)
