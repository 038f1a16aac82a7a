"""Prefect's deployment SLAs in a running engine: each kind violated, both
`tripwire.sla.missed` and `prefect.sla.violation` on the bus, an automation written for
Prefect's SLA violations firing on them, and the alerts carrying the SLAs' labels."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from events import clock
from events.filters import EventFilter
from events.model import Event
from tests.alerts.test_live import alerts
from tests.support import Running
from tests.triggers.test_live import stored
from tests.tripwire.test_cli_automations import invoke

DEPLOYMENT_ID = "prefect.deployment.0c4c1b60-6d3e-4a57-8f43-5d1f7a0f0001"

# As a Prefect user writes it for Prefect Cloud's SLA violations.
ON_VIOLATION: dict[str, Any] = {
    "name": "on-sla-violation",
    "trigger": {
        "type": "event",
        "posture": "Reactive",
        "expect": ["prefect.sla.violation"],
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "match_related": {"prefect.resource.role": "deployment"},
        "threshold": 1,
        "within": 0,
    },
    "actions": [
        {
            "type": "emit-event",
            "event": "ops.paged",
            "resource": {"prefect.resource.id": "ops.{{ event.payload.sla.name }}"},
            "payload": {"run": "{{ event.resource.id }}"},
        }
    ],
}
DEPLOYMENT: dict[str, Any] = {
    "name": "etl/daily",
    "sla": [
        {"name": "ttc", "duration": 600, "severity": "high", "labels": {"team": "data"}},
        {"name": "late", "within": 300, "severity": "low"},
        {"name": "freq", "stale_after": 3600, "severity": "critical"},
    ],
}


def run_event(state: str, run: str) -> dict[str, Any]:
    event = Event(
        occurred=clock.now(),
        event=f"prefect.flow-run.{state}",
        resource={"prefect.resource.id": f"prefect.flow-run.{run}"},
        related=[
            {
                "prefect.resource.id": "prefect.flow.0c4c1b60-6d3e-4a57-8f43-5d1f7a0f0002",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "etl",
            },
            {
                "prefect.resource.id": DEPLOYMENT_ID,
                "prefect.resource.role": "deployment",
                "prefect.resource.name": "daily",
            },
        ],
    )
    return event.model_dump(mode="json")


def named(name: str) -> EventFilter:
    return EventFilter.model_validate({"event": {"name": [name]}})


async def post(engine: Running, *events: dict[str, Any]) -> None:
    async with engine.client() as client:
        response = await client.post("/api/events", json=list(events))
    assert response.status_code == 202, response.text


async def test_each_kind_is_violated_and_prefects_automation_fires(engine: Running) -> None:
    async with engine.client() as client:
        answer = await client.post(
            "/api/definitions/apply",
            json={"deployments": [DEPLOYMENT], "automations": [ON_VIOLATION]},
        )
    assert answer.status_code == 200, answer.text
    assert [c["name"] for c in answer.json()["deployments"]] == [
        "etl/daily:ttc",
        "etl/daily:late",
        "etl/daily:freq",
    ]
    await engine.engine.pipeline.reload()
    started = clock.now()
    # r1 completes now (the frequency clock starts), r2 runs on, r3 is marked Late.
    await post(engine, run_event("Running", "r1"), run_event("Completed", "r1"))
    await post(engine, run_event("Running", "r2"), run_event("Late", "r3"))
    await engine.wait_stored(4)
    pipeline = engine.engine.pipeline

    await pipeline.run_due(started + timedelta(minutes=5, seconds=1))  # lateness
    await pipeline.run_due(started + timedelta(minutes=10, seconds=1))  # time to completion
    await pipeline.run_due(started + timedelta(hours=1, seconds=1))  # frequency
    await stored(engine, named("tripwire.sla.missed"), 3)
    await stored(engine, named("prefect.sla.violation"), 3)
    violations = (await engine.engine.store.read(named("prefect.sla.violation"))).events
    about = {e.payload["sla"]["name"]: e.resource.id for e in violations}
    assert about == {
        "late": "prefect.flow-run.r3",
        "ttc": "prefect.flow-run.r2",
        "freq": "prefect.flow-run.r1",
    }

    # The automation written for Prefect's violations fired once for each.
    await stored(engine, named("ops.paged"), 3)
    paged = (await engine.engine.store.read(named("ops.paged"))).events
    assert sorted(e.resource.id for e in paged) == ["ops.freq", "ops.late", "ops.ttc"]
    assert sorted(e.payload["run"] for e in paged) == [
        "prefect.flow-run.r1",
        "prefect.flow-run.r2",
        "prefect.flow-run.r3",
    ]

    # The misses opened alerts with the SLA's severity (mapped) and labels (beside the
    # automation's own).
    found = {a["name"]: a for a in await alerts(engine, 4)}
    assert found.pop("on-sla-violation")["kind"] == "automation"
    ttc = found["etl/daily:ttc"]
    assert ttc["severity"] == "warning"  # high
    assert ttc["labels"]["team"] == "data"
    assert ttc["labels"]["prefect.sla.severity"] == "high"
    assert found["etl/daily:late"]["severity"] == "info"  # low
    assert found["etl/daily:freq"]["severity"] == "critical"

    # A flow-name/deployment-name SLA is shown and deleted by its name, slash and all.
    code, out, err = await invoke("sla", "status", "etl/daily:ttc", "--api", engine.url)
    assert code == 0, err
    assert out.splitlines()[0] == "etl/daily:ttc (duration, warning)"
    assert "prefect.flow-run.r2" in out
    async with engine.client() as client:
        assert (await client.delete("/api/slas/etl%2Fdaily%3Alate")).status_code == 204
        assert (await client.get("/api/slas/etl%2Fdaily%3Alate")).status_code == 404
