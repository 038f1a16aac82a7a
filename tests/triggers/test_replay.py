"""Replay: the same evaluator over recorded events in event time, no side effects."""

from __future__ import annotations

from datetime import timedelta

import orjson

from events.model import ReceivedEvent
from tests.support import FIXTURES
from tests.triggers.conftest import Harness, at, flow_run
from triggers.automation import Automation
from triggers.replay import replay
from tripwire.definitions import load_paths


def recorded() -> list[ReceivedEvent]:
    lines = (FIXTURES / "flow-run-events.jsonl").read_text().splitlines()
    return [ReceivedEvent.model_validate(orjson.loads(line)) for line in lines if line]


def prefect_automations() -> list[Automation]:
    definitions = load_paths(sorted(FIXTURES.glob("*.yaml")))
    assert definitions.ok, definitions.errors
    return definitions.automations


async def test_prefect_exports_over_prefect_events() -> None:
    events = recorded()
    last = max(e.occurred for e in events)
    quiet = await replay(prefect_automations(), events)
    assert quiet.events == len(events)
    assert quiet.firings == []  # one failure of three; etl-orders never completed

    hours_later = await replay(prefect_automations(), events, until=last + timedelta(hours=2))
    (firing,) = hours_later.firings
    completed = next(
        e
        for e in events
        if e.event == "prefect.flow-run.Completed"
        and any(r.get("prefect.resource.name") == "etl-sales" for r in e.related)
    )
    assert firing.automation == "sales-refresh-expected-hourly"
    assert firing.at == completed.occurred + timedelta(hours=1)
    assert firing.why.startswith("only 0 of 1 expected events")


async def test_replay_fires_like_live_evaluation(harness: Harness) -> None:
    definitions = [
        {
            "name": "three-failures",
            "trigger": {
                "type": "event",
                "expect": ["prefect.flow-run.Failed"],
                "for_each": ["related:flow:prefect.resource.name"],
                "threshold": 3,
                "within": "10m",
            },
            "actions": [{"type": "do-nothing"}],
        },
        {
            "name": "finishes-within-5m",
            "trigger": {
                "type": "event",
                "after": ["prefect.flow-run.Running"],
                "expect": ["prefect.flow-run.Completed"],
                "for_each": ["prefect.resource.id"],
                "posture": "Proactive",
                "within": "5m",
            },
            "actions": [{"type": "do-nothing"}],
        },
    ]
    automations = harness.load(*definitions)
    events = [
        flow_run(state, run=run, flow=flow, when=at(minute)).receive()
        for minute, state, run, flow in [
            (0, "Running", "r1", "a"),
            (1, "Failed", "r1", "a"),
            (2, "Running", "r2", "b"),
            (3, "Completed", "r2", "b"),
            (4, "Failed", "r3", "a"),
            (6, "Failed", "r4", "a"),
            (7, "Failed", "r5", "b"),
            (20, "Running", "r6", "a"),
            (21, "Failed", "r7", "a"),
        ]
    ]
    # Live: batches as they come, the timer at each window's end.
    live = []
    for event in events:
        result = await harness.send(event)
        live += [(f.automation.name, f.triggered) for f in result.firings]
        while result.next_due is not None and result.next_due <= event.occurred:
            result = await harness.due(result.next_due)
            live += [(f.automation.name, f.triggered) for f in result.firings]
    for minute in (5, 25):
        live += [(f.automation.name, f.triggered) for f in (await harness.due(at(minute))).firings]

    replayed = await replay(automations, events, until=at(25))
    assert sorted((f.automation, f.at) for f in replayed.firings) == sorted(live)
    assert sorted(live) == [
        ("finishes-within-5m", at(5)),
        ("finishes-within-5m", at(25)),
        ("three-failures", at(6)),
    ]
