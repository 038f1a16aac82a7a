"""An alert's life beyond grouping: PagerDuty hears trigger, acknowledge and resolve with
one dedup_key; pending_for swallows a flap; keep_firing_for holds a resolution back;
Prefect's declare-incident makes the alert critical. Time moves through `run_due`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from events import clock
from tests.actions.receivers import Receiver, Reply
from tests.alerts.test_live import alerts, create, fail_runs, on_failures
from tests.support import Running, StartEngine, eventually
from tests.triggers.conftest import flow_run
from tests.triggers.test_live import post

ROUTING_KEY = "R0123456789abcdef0123456789abcde"  # 32 characters, as PagerDuty's are


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    accepted = '{"status":"success","message":"Event processed","dedup_key":"x"}'
    async with Receiver(Reply(202, accepted, {"content-type": "application/json"})) as hook:
        yield hook


async def post_alert(running: Running, alert: dict[str, Any], change: str) -> None:
    async with running.client() as client:
        answer = await client.post(f"/api/alerts/{alert['id']}/{change}", json={"by": "dana"})
    assert answer.status_code == 200, answer.text


async def test_pagerduty_hears_trigger_acknowledge_and_resolve_with_one_dedup_key(
    start_engine: StartEngine, receiver: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True)
    automation = on_failures(receiver.url("/v2/enqueue"))
    automation["actions"] = [
        {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": receiver.url("/v2/enqueue")}
    ]
    await create(running, automation)
    await fail_runs(running, 1)
    (alert,) = await alerts(running, 1)
    pipeline = running.engine.pipeline
    now = clock.now()
    await pipeline.run_due(now + timedelta(seconds=1))
    await receiver.wait_for(1)
    await post_alert(running, alert, "acknowledge")
    await pipeline.run_due(now + timedelta(seconds=3))
    await post_alert(running, alert, "resolve")
    await pipeline.run_due(now + timedelta(seconds=5))
    sent = [r.json() for r in await receiver.wait_for(3)]
    assert [s["event_action"] for s in sent] == ["trigger", "acknowledge", "resolve"]
    assert len({s["dedup_key"] for s in sent}) == 1
    assert sent[0]["payload"]["severity"] == "critical"
    assert "prefect.flow-run.Failed" in sent[0]["payload"]["summary"]
    assert all(s["routing_key"] == ROUTING_KEY for s in sent)
    await pipeline.run_due(now + timedelta(hours=5))
    assert len(receiver.requests) == 3


async def test_pending_for_swallows_a_flap_and_tells_of_what_stays(
    start_engine: StartEngine, receiver: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True)
    automation = on_failures(receiver.url("/services/T1/B2/x"), pending_for="5m")
    del automation["actions"][0]["grouping"]  # a plain message, damped all the same
    await create(running, automation)
    await fail_runs(running, 2)
    flapped, stays = await alerts(running, 2)
    assert flapped["pending_until"] is not None
    pipeline = running.engine.pipeline
    now = clock.now()
    await pipeline.run_due(now + timedelta(seconds=1))
    assert receiver.requests == []  # pending: nothing yet, not even the plain message
    await post_alert(running, flapped, "resolve")
    await pipeline.run_due(now + timedelta(minutes=6))
    (message,) = await receiver.wait_for(1)
    assert message.json()["text"] == "etl-failures firing"
    assert stays["key"]["prefect.resource.id"] in message.text
    assert flapped["key"]["prefect.resource.id"] not in message.text
    await pipeline.run_due(now + timedelta(minutes=7))
    assert len(receiver.requests) == 1


async def test_keep_firing_for_holds_a_proactive_resolution_back(
    start_engine: StartEngine,
) -> None:
    running = await start_engine()
    await create(
        running,
        {
            "name": "orders-every-hour",
            "keep_firing_for": "10m",
            "trigger": {
                "type": "event",
                "match": {"prefect.resource.id": "prefect.flow-run.*"},
                "expect": ["prefect.flow-run.Completed"],
                "posture": "Proactive",
                "threshold": 1,
                "within": 3600,
            },
            "actions": [{"type": "do-nothing"}],
        },
    )
    pipeline = running.engine.pipeline
    now = clock.now()
    await pipeline.run_due(now)  # opens the window
    await pipeline.run_due(now + timedelta(hours=1, seconds=1))  # nothing came: it fires
    (alert,) = await alerts(running, 1, state="firing")
    await post(running, flow_run("Completed", when=now + timedelta(hours=1, minutes=1)))

    async def held_back() -> bool:
        (held,) = await alerts(running, 1, state="firing")
        return held["resolve_at"] is not None

    await eventually(held_back, 15, "the resolution held back")
    await pipeline.run_due(now + timedelta(hours=1, minutes=5))
    await alerts(running, 1, state="firing")  # still firing within keep_firing_for
    await pipeline.run_due(now + timedelta(hours=1, minutes=12))
    (done,) = await alerts(running, 1, state="resolved")
    assert done["id"] == alert["id"]
    assert done["resolved_by"] == "automation resolved, kept firing for a while"


async def test_prefects_declare_incident_opens_a_critical_alert(
    start_engine: StartEngine,
) -> None:
    running = await start_engine()
    automation = on_failures("http://unused.invalid/")
    automation["severity"] = "info"
    automation["actions"] = [{"type": "declare-incident"}]
    await create(running, automation)
    await fail_runs(running, 1)
    (alert,) = await alerts(running, 1)
    assert alert["severity"] == "critical"
    assert alert["labels"]["severity"] == "critical"
    ledger = await running.engine.acting.ledger.list(automation="etl-failures")
    assert ledger == []  # nothing to run: the alert is the incident


async def test_an_at_risk_sla_alert_resolves_when_the_sla_is_met(
    start_engine: StartEngine,
) -> None:
    running = await start_engine()
    sla = {
        "name": "etl-within-1h",
        "kind": "duration",
        "start": ["prefect.flow-run.Running"],
        "expect": ["prefect.flow-run.Completed"],
        "for_each": ["prefect.resource.id"],
        "within": "1h",
        "warn_before": {"before": "10m", "actions": [{"type": "do-nothing"}]},
    }
    async with running.client() as client:
        answer = await client.post("/api/slas/apply", json={"slas": [sla]})
    assert answer.status_code == 200, answer.text
    started = clock.now()
    await post(running, flow_run("Running", when=started))
    await running.wait_stored(1)
    await running.engine.pipeline.run_due(started + timedelta(minutes=51))
    (alert,) = await alerts(running, 1, state="firing")
    assert alert["labels"]["sla_state"] == "at-risk"
    await post(running, flow_run("Completed", when=started + timedelta(minutes=55)))
    (done,) = await alerts(running, 1, state="resolved")
    assert done["id"] == alert["id"]
    assert done["resolved_by"] == "sla met"
