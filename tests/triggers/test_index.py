"""Triggers pinned to exact resource ids, evaluated for real on SQLite and PostgreSQL: the
candidate index hands an event only the triggers of its own resource id and the unpinned
ones, and what fires, what is recorded and what `explain` says stay as with a full scan:
compound children, `after` arming, Proactive windows, paused automations."""

from __future__ import annotations

from typing import Any

from tests.triggers.conftest import Harness, at, fired, flow_run
from triggers.decisions import read_decisions
from triggers.explain import match_report

R1 = "prefect.flow-run.r1"


def pinned(name: str, *runs: str, **trigger: Any) -> dict[str, Any]:
    """An automation whose trigger pins `prefect.resource.id` to these flow runs."""
    ids = [f"prefect.flow-run.{run}" for run in runs]
    base: dict[str, Any] = {
        "type": "event",
        "match": {"prefect.resource.id": ids[0] if len(ids) == 1 else ids},
        "expect": ["prefect.flow-run.Failed"],
        "threshold": 1,
        "within": 0,
    }
    base.update(trigger)
    return {"name": name, "trigger": base, "actions": [{"type": "do-nothing"}]}


def unmatched(run: str) -> tuple[str, str]:
    """The decision about an event of another run than r1."""
    return ("unmatched", f"label prefect.resource.id was 'prefect.flow-run.{run}' not {R1}")


async def test_each_event_fires_only_the_automations_of_its_resource(harness: Harness) -> None:
    harness.load(
        *(pinned(f"run-{i:02d}", f"r{i}") for i in range(40)),
        pinned("r3-or-r5", "r3", "r5"),
        pinned("every-run", "r0", match={"prefect.resource.id": "prefect.flow-run.*"}),
        pinned("not-r7", "r0", match={"prefect.resource.id": "!prefect.flow-run.r7"}),
        pinned("unpinned", "r0", match={}),
    )
    result = await harness.send(flow_run("Failed", run="r3", when=at(0)))
    # In the order of the full list: loading order.
    assert fired(result) == [
        "run-03:triggered",
        "r3-or-r5:triggered",
        "every-run:triggered",
        "not-r7:triggered",
        "unpinned:triggered",
    ]
    result = await harness.send(flow_run("Failed", run="r7", when=at(1)))
    assert fired(result) == ["run-07:triggered", "every-run:triggered", "unpinned:triggered"]
    result = await harness.send(flow_run("Failed", run="elsewhere", when=at(2)))
    assert fired(result) == ["every-run:triggered", "not-r7:triggered", "unpinned:triggered"]


async def test_mismatches_of_skipped_triggers_are_recorded_as_a_full_scan_records_them(
    harness: Harness,
) -> None:
    (automation,) = harness.load(pinned("only-r1", "r1"))
    others = [flow_run("Failed", run=run, when=at(i)) for i, run in enumerate(("r2", "r3"))]
    own = flow_run("Failed", run="r1", when=at(5))
    result = await harness.send(*others, own)
    assert fired(result) == ["only-r1:triggered"]
    assert await harness.reasons() == [
        (
            "unmatched",
            "label prefect.resource.id was 'prefect.flow-run.r2' not prefect.flow-run.r1",
        ),
        (
            "unmatched",
            "label prefect.resource.id was 'prefect.flow-run.r3' not prefect.flow-run.r1",
        ),
        ("fired", "fired: 1 of 1 events within 0s"),
    ]
    # `explain --event` on an event of another resource: the recorded decision, and the
    # same answer when matched now.
    recorded = await read_decisions(harness.db, str(automation.id), event_id=str(others[0].id))
    assert [(d.outcome, d.reason) for d in recorded] == [unmatched("r2")]
    (now,) = match_report(automation, others[0].receive())
    assert (now["outcome"], now["reason"]) == unmatched("r2")


async def test_a_paused_pinned_automation_says_so_for_every_resource(harness: Harness) -> None:
    paused = {**pinned("paused-r1", "r1"), "enabled": False}
    harness.load(paused)
    result = await harness.send(flow_run("Failed", run="r2", when=at(0)))
    assert fired(result) == []
    assert await harness.reasons() == [("paused", "the automation is paused")]


async def test_compound_children_pinned_to_different_resources(harness: Harness) -> None:
    children = [
        {
            "type": "event",
            "match": {"prefect.resource.id": f"prefect.flow-run.{run}"},
            "expect": ["prefect.flow-run.Completed"],
        }
        for run in ("extract", "load")
    ]
    harness.load(
        {
            "name": "both-ran",
            "trigger": {"type": "compound", "require": "all", "within": "1h", "triggers": children},
            "actions": [{"type": "do-nothing"}],
        },
        {
            "name": "in-order",
            "trigger": {"type": "sequence", "within": "1h", "triggers": children},
            "actions": [{"type": "do-nothing"}],
        },
    )
    result = await harness.send(
        flow_run("Completed", run="other", when=at(0)),
        flow_run("Completed", run="load", when=at(1)),
    )
    assert fired(result) == []
    result = await harness.send(flow_run("Completed", run="extract", when=at(2)))
    assert fired(result) == ["both-ran:triggered"]  # the sequence saw load first
    result = await harness.send(flow_run("Completed", run="load", when=at(3)))
    assert fired(result) == ["in-order:triggered"]


async def test_after_arms_only_for_the_pinned_resource(harness: Harness) -> None:
    harness.load(
        pinned(
            "r1-failed-after-running",
            "r1",
            after=["prefect.flow-run.Running"],
            within="10m",
        )
    )
    result = await harness.send(
        flow_run("Running", run="r2", when=at(0)),  # another run: arms nothing
        flow_run("Failed", run="r1", when=at(1)),  # not armed yet
        flow_run("Failed", run="r2", when=at(2)),
    )
    assert fired(result) == []
    outcomes = [outcome for outcome, _ in await harness.reasons()]
    assert outcomes == ["unmatched", "unmatched", "waiting"]
    result = await harness.send(
        flow_run("Running", run="r1", when=at(3)),
        flow_run("Failed", run="r2", when=at(4)),
        flow_run("Failed", run="r1", when=at(5)),
    )
    assert fired(result) == ["r1-failed-after-running:triggered"]


async def test_a_proactive_trigger_pinned_to_a_resource(harness: Harness) -> None:
    harness.load(
        pinned(
            "r1-not-completed",
            "r1",
            expect=["prefect.flow-run.Completed"],
            posture="Proactive",
            within="10m",
        )
    )
    await harness.due(at(0))
    result = await harness.send(flow_run("Completed", run="r2", when=at(1)))
    assert fired(result) == []
    result = await harness.due(at(10))
    assert fired(result) == ["r1-not-completed:triggered"]  # r2 did not count for r1
    result = await harness.send(flow_run("Completed", run="r1", when=at(11)))
    assert fired(result) == ["r1-not-completed:resolved"]
