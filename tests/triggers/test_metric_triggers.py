"""Metric triggers, evaluated for real on SQLite and PostgreSQL: each metric from flow-run
state events, each operator, firing only after `firing_for`, resolving after as long,
no value meaning no change, a metric per for_each key, one evaluation per tick, and
replay giving the same firings as live evaluation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from events.model import Event, ReceivedEvent
from tests.support import fixture_events
from tests.triggers.conftest import (
    ACTIONS_SUBJECT,
    EVENTS_SUBJECT,
    T0,
    Harness,
    at,
    fired,
    flow_run,
    published,
)
from triggers.automation import Automation
from triggers.explain import match_report
from triggers.identity import stamped
from triggers.metrics import tick_at
from triggers.replay import replay
from triggers.results import Result
from triggers.tables import metric_runs, metric_states


def metric(
    name: str = "duration", operator: str = ">", threshold: float = 30, **more: Any
) -> dict[str, Any]:
    trigger: dict[str, Any] = {
        "type": "metric",
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": "etl-*"},
        "metric": {
            "name": name,
            "threshold": threshold,
            "operator": operator,
            "range": more.pop("range", "5m"),
            "firing_for": more.pop("firing_for", "1m"),
        },
    }
    trigger.update(more)
    return {
        "name": f"etl-{name}",
        "trigger": trigger,
        "actions": [{"type": "do-nothing"}],
        "actions_on_resolve": [{"type": "do-nothing"}],
    }


def run(
    name: str,
    running: datetime,
    ended: datetime,
    state: str = "Completed",
    flow: str = "etl-orders",
) -> list[Event]:
    """A flow run's Pending, Running and terminal state events."""
    return [
        flow_run("Pending", run=name, flow=flow, when=running - timedelta(seconds=1)),
        flow_run("Running", run=name, flow=flow, when=running),
        flow_run(state, run=name, flow=flow, when=ended),
    ]


async def ticks(harness: Harness, start: datetime, end: datetime) -> list[tuple[str, str]]:
    """Run the timer at every tick from `start` to `end`; what fired or resolved, when."""
    happened: list[tuple[str, str]] = []
    now = start
    while now <= end:
        result = await harness.due(now)
        happened += [(f.triggered.strftime("%H:%M:%S"), f.state.value) for f in result.firings]
        now += timedelta(seconds=10)
    return happened


async def measured(harness: Harness) -> list[str]:
    return [r for o, r in await harness.reasons() if o == "measured"]


async def test_duration_fires_after_holding_for_firing_for_and_resolves(harness: Harness) -> None:
    harness.load(metric("duration", ">", 30, firing_for="1m"))
    # Two runs of 40 s and 50 s: the average is 45 s over the last 5 minutes.
    await harness.send(*run("a", at(0, 0), at(0, 40)), *run("b", at(0, 10), at(1, 0)))
    happened = await ticks(harness, at(0), at(2, 30))
    # A run counts from the first tick after it ended: true from 09:00:50, fired 1 minute
    # later.
    assert happened == [("09:01:50", "triggered")]
    reasons = await measured(harness)
    assert reasons[0] == "duration 40s > 30s over 5m (1 run): true for 0s of 1m"
    assert "duration 45s > 30s over 5m (2 runs): true for 20s of 1m" in reasons

    # A fast run brings the average down to 35 s, then more bring it under 30 s.
    await harness.send(*run("c", at(2, 40), at(2, 55)))
    await harness.send(*run("d", at(3, 0), at(3, 5)), *run("e", at(3, 10), at(3, 15)))
    happened = await ticks(harness, at(2, 40), at(5))
    # 35 s at 09:03:00, 27.5 s from 09:03:10: resolved 1 minute later.
    assert happened == [("09:04:10", "resolved")]
    result = await harness.due(at(5, 10))
    assert fired(result) == []


async def test_the_firing_goes_through_the_outbox_like_any_firing(harness: Harness) -> None:
    (automation,) = harness.load(metric("duration", ">", 30, firing_for=0))
    await harness.send(*run("a", at(0, 0), at(0, 40)))
    result = await harness.due(at(0, 50))
    assert fired(result) == ["etl-duration:triggered"]
    (announcement,) = published(result, EVENTS_SUBJECT)
    assert announcement["event"] == "tripwire.automation.triggered"
    assert announcement["occurred"].startswith("2026-11-21T09:00:50")
    assert announcement["payload"]["triggering_event"] is None
    (request,) = published(result, ACTIONS_SUBJECT)
    assert request["automation"]["id"] == str(automation.id)
    assert request["state"] == "triggered"


@pytest.mark.parametrize(
    ("operator", "threshold", "fires"),
    [
        (">", 40, False),
        (">", 39.9, True),
        (">=", 40, True),
        ("<", 40, False),
        ("<", 40.1, True),
        ("<=", 40, True),
    ],
)
async def test_each_operator_compares_the_value_with_the_threshold(
    harness: Harness, operator: str, threshold: float, fires: bool
) -> None:
    harness.load(metric("duration", operator, threshold, firing_for=0))
    await harness.send(*run("a", at(0, 0), at(0, 40)))  # exactly 40 s
    result = await harness.due(at(0, 50))
    assert fired(result) == (["etl-duration:triggered"] if fires else [])


async def test_successes_is_the_share_of_completed_among_finished_runs(harness: Harness) -> None:
    harness.load(metric("successes", "<", 0.75, firing_for="20s"))
    await harness.send(
        *run("a", at(0, 0), at(0, 5)),
        *run("b", at(0, 0), at(0, 6)),
        *run("c", at(0, 0), at(0, 7), state="Failed"),
        flow_run("Running", run="d", when=at(0, 1)),  # still running: not counted
    )
    assert await ticks(harness, at(0, 10), at(0, 20)) == []
    reasons = await measured(harness)
    assert reasons[0] == "successes 0.667 < 0.75 over 5m (3 runs): true for 0s of 20s"
    assert await ticks(harness, at(0, 30), at(0, 30)) == [("09:00:30", "triggered")]
    # Cancelled and Crashed runs are not successes either; a run that failed and then
    # completed when run again counts once, as completed: 3 of 5.
    await harness.send(*run("e", at(0, 31), at(0, 32), state="Cancelled"))
    await harness.send(*run("f", at(0, 31), at(0, 33), state="Crashed"))
    await harness.send(
        flow_run("Running", run="c", when=at(0, 41)), flow_run("Completed", run="c", when=at(0, 45))
    )
    assert await ticks(harness, at(0, 50), at(0, 50)) == []
    reasons = await measured(harness)
    assert reasons[-1] == "successes 0.6 < 0.75 over 5m (5 runs): true, firing"


async def test_lateness_counts_from_late_to_running_for_runs_marked_late(harness: Harness) -> None:
    harness.load(metric("lateness", ">=", 60, firing_for=0))
    await harness.send(
        flow_run("Scheduled", run="on-time", when=at(0)),
        flow_run("Pending", run="on-time", when=at(0, 1)),
        flow_run("Running", run="on-time", when=at(0, 2)),  # never Late: not counted
        flow_run("Scheduled", run="late", when=at(0)),
        flow_run("Late", run="late", when=at(0, 15)),
        flow_run("Pending", run="late", when=at(1, 10)),
    )
    assert await ticks(harness, at(0), at(1, 10)) == []
    await harness.send(flow_run("Running", run="late", when=at(1, 15)))
    assert await ticks(harness, at(1, 20), at(1, 20)) == [("09:01:20", "triggered")]
    assert "lateness 60s >= 60s over 5m (1 run): true for 0s" in [
        r.split(": ", 1)[1] for o, r in await harness.reasons() if o == "fired"
    ]


async def test_a_run_that_crashed_while_late_counts_its_lateness(harness: Harness) -> None:
    harness.load(metric("lateness", ">", 100, firing_for=0))
    await harness.send(
        flow_run("Late", run="x", when=at(0)),
        flow_run("Crashed", run="x", when=at(2)),
    )
    assert await ticks(harness, at(2), at(2, 10)) == [("09:02:10", "triggered")]


async def test_no_runs_in_range_changes_nothing(harness: Harness) -> None:
    harness.load(metric("duration", ">", 30, range="1m", firing_for=0))
    await harness.send(*run("a", at(0, 0), at(0, 40)))
    assert await ticks(harness, at(0, 40), at(0, 50)) == [("09:00:50", "triggered")]
    # The run leaves the 1-minute range at 09:01:50: no value, so still firing, no resolve.
    assert await ticks(harness, at(1), at(5)) == []
    assert "no runs in the last 1m: no value, no change" in await measured(harness)
    async with harness.db.connect() as conn:
        (triggered,) = (await conn.execute(select(metric_states.c.triggered))).scalars().all()
    assert triggered == at(0, 50)
    # A fast run: the value is back, and false, so it resolves.
    await harness.send(*run("b", at(5, 0), at(5, 2)))
    assert await ticks(harness, at(5, 10), at(5, 10)) == [("09:05:10", "resolved")]


async def test_for_each_keeps_a_metric_per_deployment(harness: Harness) -> None:
    harness.load(
        metric(
            "duration",
            ">",
            30,
            firing_for=0,
            match_related=[],
            for_each=["related:flow:prefect.resource.name"],
        )
    )
    await harness.send(
        *run("a", at(0, 0), at(0, 50), flow="etl-slow"),
        *run("b", at(0, 0), at(0, 5), flow="etl-fast"),
    )
    result = await harness.due(at(1))
    assert [f.labels for f in result.firings] == [
        {"related:flow:prefect.resource.name": "etl-slow"}
    ]
    (request,) = published(result, ACTIONS_SUBJECT)
    assert request["triggering_labels"] == {"related:flow:prefect.resource.name": "etl-slow"}
    async with harness.db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(metric_states)) == 2


async def test_match_related_picks_the_runs_measured(harness: Harness) -> None:
    harness.load(metric("duration", ">", 30, firing_for=0))  # flows etl-*
    await harness.send(*run("a", at(0, 0), at(0, 50), flow="sales"))
    assert await ticks(harness, at(0, 50), at(1)) == []
    async with harness.db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(metric_runs)) == 0


async def test_a_tick_is_evaluated_once(harness: Harness) -> None:
    harness.load(metric("duration", ">", 30, firing_for=0))
    await harness.send(*run("a", at(0, 0), at(0, 40)))
    first = await harness.due(at(0, 51))
    again = await harness.due(at(0, 59))  # the same tick, 09:00:50: a second timer, a poll
    assert fired(first) == ["etl-duration:triggered"]
    assert fired(again) == []
    assert again.next_due == at(1)
    assert len([o for o, _ in await harness.reasons() if o == "fired"]) == 1


async def test_a_paused_automation_is_not_evaluated(harness: Harness) -> None:
    definition = metric("duration", ">", 30, firing_for=0)
    definition["enabled"] = False
    harness.load(definition)
    await harness.send(*run("a", at(0, 0), at(0, 40)))
    result = await harness.due(at(1))
    assert fired(result) == []
    assert result.next_due is None


async def test_a_metric_child_of_a_compound_trigger_hands_its_firing_up(harness: Harness) -> None:
    harness.load(
        {
            "name": "slow-or-failing",
            "trigger": {
                "type": "compound",
                "require": "any",
                "triggers": [
                    metric("duration", ">", 30, firing_for=0)["trigger"],
                    {"type": "event", "expect": ["never.happens"]},
                ],
            },
            "actions": [{"type": "do-nothing"}],
        }
    )
    await harness.send(*run("a", at(0, 0), at(0, 40)))
    result = await harness.due(at(0, 50))
    assert fired(result) == ["slow-or-failing:triggered"]
    assert "compound trigger: a child fired (duration 40s > 30s" in result.firings[0].why


def firings_of(result: Result) -> list[tuple[str, str, str, dict[str, str]]]:
    return [(f.triggered.isoformat(), f.state.value, f.why, f.labels) for f in result.firings]


async def test_replay_gives_the_firings_of_live_evaluation(harness: Harness) -> None:
    definition = metric(
        "duration",
        ">",
        30,
        range="2m",
        firing_for="30s",
        match_related=[],
        for_each=["related:flow:prefect.resource.name"],
    )
    events: list[Event] = []
    for index in range(12):
        start = at(minutes=index)
        slow = 45 if 3 <= index <= 7 else 10
        events += run(f"s{index}", start, start + timedelta(seconds=slow), flow="etl-a")
        events += run(f"t{index}", start, start + timedelta(seconds=20), flow="etl-b")
    harness.load(definition)
    live: list[tuple[str, str, str, dict[str, str]]] = []
    received = [e.receive() for e in events]
    ordered = sorted(received, key=lambda e: e.occurred)
    now = T0
    end = at(16)
    pending = list(ordered)
    while now <= end:
        arrived = [e for e in pending if e.occurred <= now]
        pending = [e for e in pending if e.occurred > now]
        if arrived:
            await harness.send(*arrived)
        live += firings_of(await harness.due(now))
        now += timedelta(seconds=10)
    assert [state for _, state, _, _ in live] == ["triggered", "resolved"]

    automations = [stamped(Automation.model_validate(definition))]
    report = await replay(automations, received, start=T0, until=end)
    replayed = [(f.at.isoformat(), f.state, f.why, f.labels) for f in report.firings]
    assert replayed == live


def prefect_metric(name: str, operator: str, threshold: float, **more: Any) -> dict[str, Any]:
    definition = metric(name, operator, threshold, match_related=[], firing_for=0, **more)
    definition["name"] = f"prefect-{name}"
    return definition


async def test_metrics_of_a_real_prefect_servers_flow_runs(harness: Harness) -> None:
    """The captured events of a real Prefect server: etl-sales ran 0.09 s and completed,
    etl-orders failed after 1.03 s, bars-dep's run went Late and never ran."""
    definitions = [
        prefect_metric("duration", ">", 0.5, for_each=["related:flow:prefect.resource.name"]),
        prefect_metric("successes", "<", 0.75),
        prefect_metric("lateness", ">", 0),
    ]
    lateness = harness.load(*definitions)[2].trigger
    received = [ReceivedEvent.model_validate(e) for e in fixture_events()]
    await harness.send(*received)
    start = tick_at(received[0].occurred)
    end = tick_at(received[-1].occurred) + timedelta(seconds=10)
    live: list[tuple[str, str, str, dict[str, str]]] = []
    now = start
    while now <= end:
        live += firings_of(await harness.due(now))
        now += timedelta(seconds=10)
    assert [(state, why, labels) for _, state, why, labels in live] == [
        (
            "triggered",
            "duration 1.03s > 0.5s over 5m (1 run): true for 0s",
            {"related:flow:prefect.resource.name": "etl-orders"},
        ),
        ("triggered", "successes 0.5 < 0.75 over 5m (2 runs): true for 0s", {}),
    ]
    reasons = await measured(harness)
    assert "duration 0.0874s > 0.5s over 5m (1 run): false" in reasons  # etl-sales
    # bars-dep's run went Late and never ran: known to the lateness trigger, no sample.
    async with harness.db.connect() as conn:
        query = select(metric_runs).where(metric_runs.c.trigger_id == str(lateness.id))
        runs = {r.run: r for r in (await conn.execute(query)).all()}
    late = runs["prefect.flow-run.96d45afe-51de-4397-9730-aeb8e148128f"]
    assert late.late is not None
    assert [r.at for r in runs.values()] == [None, None, None]  # the other two never went Late

    automations = [stamped(Automation.model_validate(d)) for d in definitions]
    report = await replay(automations, received, start=start, until=end)
    assert [(f.at.isoformat(), f.state, f.why, f.labels) for f in report.firings] == live


def test_explain_says_whether_an_event_feeds_the_metric() -> None:
    automation = stamped(Automation.model_validate(metric("lateness", ">", 60)))
    late = flow_run("Late", run="r1", flow="etl-orders").receive()
    elsewhere = flow_run("Late", run="r2", flow="sales").receive()
    heartbeat = flow_run("heartbeat", run="r1", flow="etl-orders").receive()
    reports = [match_report(automation, e)[0] for e in (late, elsewhere, heartbeat)]
    assert [(r["outcome"], r["reason"]) for r in reports] == [
        (
            "measured",
            "the event feeds the lateness metric (Late of prefect.flow-run.r1); each "
            "evaluation's value is in the decisions",
        ),
        (
            "unmatched",
            "no related resource has prefect.resource.role=flow, prefect.resource.name=etl-*",
        ),
        ("not-measured", "prefect.flow-run.heartbeat is not a flow-run state change"),
    ]
    assert reports[0]["trigger_id"] == str(automation.trigger.id)


async def test_a_replay_runs_to_the_tick_after_the_last_event() -> None:
    definition = prefect_metric("duration", ">", 0.5)
    received = [ReceivedEvent.model_validate(e) for e in fixture_events()]
    report = await replay([stamped(Automation.model_validate(definition))], received)
    # etl-orders failed at 09:42:59.02, the last event: its run counts from 09:43:00.
    assert [(f.at.isoformat(), f.state) for f in report.firings] == [
        ("2026-11-21T09:43:00+00:00", "triggered")
    ]
