"""Trigger rules, evaluated for real on SQLite and PostgreSQL: thresholds and window
edges, for_each keys, after/expect arming, proactive windows with a moved clock,
compound any/all/N, sequence order, pausing, redelivery and the cascade guard."""

from __future__ import annotations

from typing import Any

from actions.causation import CAUSE_ROLE, DEPTH_LABEL
from tests.triggers.conftest import (
    ACTIONS_SUBJECT,
    EVENTS_SUBJECT,
    Harness,
    at,
    fired,
    flow_run,
    published,
)
from triggers.firing import firing_id


def failing(**trigger: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "event",
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": "etl-*"},
        "expect": ["prefect.flow-run.Failed"],
        "threshold": 3,
        "within": "10m",
    }
    base.update(trigger)
    return {
        "name": "etl-keeps-failing",
        "trigger": base,
        "actions": [{"type": "do-nothing"}, {"type": "do-nothing"}],
    }


async def test_fires_on_the_third_failure_within_the_window(harness: Harness) -> None:
    harness.load(failing())
    first = await harness.send(flow_run("Failed", when=at(0)), flow_run("Failed", when=at(1)))
    assert fired(first) == []
    third = await harness.send(flow_run("Failed", when=at(2)))
    assert fired(third) == ["etl-keeps-failing:triggered"]

    (announcement,) = published(third, EVENTS_SUBJECT)
    assert announcement["event"] == "tripwire.automation.triggered"
    assert announcement["resource"]["prefect.resource.name"] == "etl-keeps-failing"
    assert announcement["related"][0]["prefect.resource.role"] == "triggering-event"
    requests = published(third, ACTIONS_SUBJECT)
    assert [r["action_index"] for r in requests] == [0, 1]
    assert len({r["id"] for r in requests}) == 2
    assert requests[0]["triggering_event"]["occurred"].startswith("2026-11-21T09:02:00")


async def test_firing_waits_out_its_window_before_counting_again(harness: Harness) -> None:
    harness.load(failing())
    result = await harness.send(*(flow_run("Failed", when=at(m)) for m in (0, 1, 2, 3, 4, 5)))
    assert fired(result) == ["etl-keeps-failing:triggered"]  # not twice: the window is spent
    later = await harness.send(*(flow_run("Failed", when=at(m)) for m in (12, 13, 14)))
    assert fired(later) == ["etl-keeps-failing:triggered"]


async def test_an_event_at_the_window_end_starts_the_next_window(harness: Harness) -> None:
    harness.load(failing())
    # The first window reaches from 15 minutes before the first event to 10 minutes after.
    result = await harness.send(
        flow_run("Failed", when=at(0)),
        flow_run("Failed", when=at(9, 59)),
        flow_run("Failed", when=at(10)),  # the window is [start, end): this opens the next
        flow_run("Failed", when=at(11)),
    )
    assert fired(result) == []
    assert await harness.send(flow_run("Failed", when=at(19, 59))) is not None
    final = await harness.reasons()
    assert ("counted", "2 of 3 events within 10m (window ends 2026-11-21T09:20:00+00:00)") in final


async def test_threshold_reached_exactly_at_the_edge_does_not_fire(harness: Harness) -> None:
    harness.load(failing(threshold=2, within="1m"))
    result = await harness.send(flow_run("Failed", when=at(0)), flow_run("Failed", when=at(1)))
    assert fired(result) == []
    result = await harness.send(flow_run("Failed", when=at(1, 59)))
    assert fired(result) == ["etl-keeps-failing:triggered"]


async def test_for_each_keeps_a_count_per_key(harness: Harness) -> None:
    harness.load(failing(for_each=["related:flow:prefect.resource.name"]))
    result = await harness.send(
        flow_run("Failed", flow="etl-a", when=at(0)),
        flow_run("Failed", flow="etl-b", when=at(1)),
        flow_run("Failed", flow="etl-a", when=at(2)),
        flow_run("Failed", flow="etl-b", when=at(3)),
    )
    assert fired(result) == []
    result = await harness.send(flow_run("Failed", flow="etl-b", when=at(4)))
    assert [f.labels for f in result.firings] == [{"related:flow:prefect.resource.name": "etl-b"}]
    assert await harness.open_windows() == 2  # etl-a still counting, etl-b's next window


async def test_where_filters_on_the_payload(harness: Harness) -> None:
    harness.load(failing(threshold=1, where="payload.rows < `100`"))
    result = await harness.send(flow_run("Failed", payload={"rows": 500}, when=at(0)))
    assert fired(result) == []
    result = await harness.send(flow_run("Failed", payload={"rows": 3}, when=at(1)))
    assert fired(result) == ["etl-keeps-failing:triggered"]
    assert ("filtered", "where was false: payload.rows < `100`") in await harness.reasons()


async def test_unmatched_labels_are_explained(harness: Harness) -> None:
    harness.load(
        failing(match_related={"prefect.resource.role": "flow", "prefect.resource.name": "sales*"})
    )
    await harness.send(flow_run("Failed", flow="etl", when=at(0)))
    reasons = await harness.reasons()
    assert reasons == [
        (
            "unmatched",
            "no related resource has prefect.resource.role=flow, prefect.resource.name=sales*",
        )
    ]
    harness.load(failing(match={"prefect.resource.name": "sales*"}))
    await harness.send(flow_run("Failed", when=at(1), labels={"prefect.resource.name": "etl"}))
    assert (await harness.reasons())[-1] == (
        "unmatched",
        "label prefect.resource.name was 'etl' not sales*",
    )


async def test_other_event_names_are_not_candidates(harness: Harness) -> None:
    harness.load(failing(threshold=1))
    result = await harness.send(flow_run("Completed", when=at(0)))
    assert fired(result) == []
    assert result.decisions == []


async def test_paused_automation_decides_paused_and_keeps_no_state(harness: Harness) -> None:
    harness.load({**failing(threshold=1), "enabled": False})
    result = await harness.send(flow_run("Failed", when=at(0)))
    assert fired(result) == []
    assert await harness.reasons() == [("paused", "the automation is paused")]
    assert await harness.open_windows() == 0


async def test_a_redelivered_batch_is_not_evaluated_twice(harness: Harness) -> None:
    harness.load(failing(threshold=1))
    event = flow_run("Failed", when=at(0)).receive()
    body = event.model_dump_json().encode()
    first = await harness.send_bodies([body])
    again = await harness.send_bodies([body])
    assert fired(first) == ["etl-keeps-failing:triggered"]
    assert fired(again) == []


async def test_firing_ids_are_deterministic(harness: Harness) -> None:
    harness.load(failing(threshold=1))
    event = flow_run("Failed", when=at(0)).receive()
    result = await harness.send_bodies([event.model_dump_json().encode()])
    (firing,) = result.firings
    assert firing.id == firing_id(harness.evaluator.watches[0].id, event.id)
    expected = {firing_id(firing.id, "event")} | {
        firing_id(firing.id, "action", i) for i in range(2)
    }
    assert {m.id for m in result.messages} == expected


async def test_after_arms_and_disarms_a_reactive_trigger(harness: Harness) -> None:
    harness.load(
        failing(
            after=["prefect.flow-run.Running"],
            expect=["prefect.flow-run.Failed"],
            threshold=1,
            within="5m",
            for_each=["prefect.resource.id"],
        )
    )
    result = await harness.send(flow_run("Failed", run="a", when=at(0)))
    assert fired(result) == []
    assert (await harness.reasons())[-1][0] == "waiting"
    result = await harness.send(
        flow_run("Running", run="a", when=at(1)), flow_run("Failed", run="a", when=at(2))
    )
    assert fired(result) == ["etl-keeps-failing:triggered"]
    # Fired, so disarmed until the next Running.
    result = await harness.send(flow_run("Failed", run="a", when=at(3)))
    assert fired(result) == []


def not_completed(**trigger: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "event",
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "after": ["prefect.flow-run.Running"],
        "expect": ["prefect.flow-run.Completed"],
        "for_each": ["prefect.resource.id"],
        "posture": "Proactive",
        "threshold": 1,
        "within": "1h",
    }
    base.update(trigger)
    return {
        "name": "runs-finish-within-1h",
        "trigger": base,
        "actions": [{"type": "do-nothing"}],
        "actions_on_resolve": [{"type": "do-nothing"}],
    }


async def test_proactive_fires_when_the_window_ends_without_the_event(harness: Harness) -> None:
    harness.load(not_completed())
    await harness.send(
        flow_run("Running", run="slow", when=at(0)),
        flow_run("Running", run="quick", when=at(1)),
        flow_run("Completed", run="quick", when=at(30)),
    )
    early = await harness.due(at(59, 59))
    assert fired(early) == []
    assert early.next_due == at(60)
    on_time = await harness.due(at(60))
    assert fired(on_time) == ["runs-finish-within-1h:triggered"]
    assert on_time.firings[0].labels == {"prefect.resource.id": "prefect.flow-run.slow"}
    assert fired(await harness.due(at(61))) == []  # quick completed; slow fired once
    assert fired(await harness.due(at(200))) == []


async def test_proactive_without_after_fires_every_quiet_window_and_resolves(
    harness: Harness,
) -> None:
    harness.load(not_completed(after=[], for_each=[], within="10m"))
    opened = await harness.due(at(0))
    assert fired(opened) == []
    assert opened.next_due == at(10)
    quiet = await harness.due(at(10))
    assert fired(quiet) == ["runs-finish-within-1h:triggered"]
    back = await harness.send(flow_run("Completed", when=at(12)))
    assert fired(back) == ["runs-finish-within-1h:resolved"]
    (request,) = published(back, ACTIONS_SUBJECT)
    assert request["state"] == "resolved"
    assert fired(await harness.due(at(20))) == []  # the window [10, 20) saw its event


async def test_proactive_resolved_event_payload(harness: Harness) -> None:
    harness.load(not_completed(after=[], for_each=[], within="10m"))
    await harness.due(at(0))
    await harness.due(at(10))
    back = await harness.send(flow_run("Completed", when=at(11)))
    (announcement,) = published(back, EVENTS_SUBJECT)
    assert announcement["event"] == "tripwire.automation.resolved"


def child(flow: str, state: str = "Completed") -> dict[str, Any]:
    return {
        "type": "event",
        "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": flow},
        "expect": [f"prefect.flow-run.{state}"],
    }


def composite(kind: str, children: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "name": f"{kind}-etls",
        "trigger": {"type": kind, "triggers": children, **extra},
        "actions": [{"type": "do-nothing"}],
    }


async def test_compound_all_needs_every_child_within_the_window(harness: Harness) -> None:
    harness.load(
        composite("compound", [child("etl-sales"), child("etl-orders")], require="all", within="1h")
    )
    result = await harness.send(flow_run("Completed", flow="etl-sales", when=at(0)))
    assert fired(result) == []
    result = await harness.send(flow_run("Completed", flow="etl-orders", when=at(90)))
    assert fired(result) == []  # the sales firing is older than an hour
    result = await harness.send(flow_run("Completed", flow="etl-sales", when=at(100)))
    assert fired(result) == ["compound-etls:triggered"]
    result = await harness.send(flow_run("Completed", flow="etl-sales", when=at(101)))
    assert fired(result) == []  # child firings were used up


async def test_compound_any_and_number(harness: Harness) -> None:
    harness.load(
        composite("compound", [child("a"), child("b"), child("c")], require="any"),
    )
    assert fired(await harness.send(flow_run("Completed", flow="b", when=at(0)))) == [
        "compound-etls:triggered"
    ]
    harness.load(composite("compound", [child("a"), child("b"), child("c")], require=2))
    assert fired(await harness.send(flow_run("Completed", flow="a", when=at(1)))) == []
    assert fired(await harness.send(flow_run("Completed", flow="a", when=at(2)))) == []
    assert fired(await harness.send(flow_run("Completed", flow="c", when=at(3)))) == [
        "compound-etls:triggered"
    ]


async def test_sequence_fires_only_in_order(harness: Harness) -> None:
    harness.load(composite("sequence", [child("extract"), child("load")], within="1h"))
    result = await harness.send(
        flow_run("Completed", flow="load", when=at(0)),
        flow_run("Completed", flow="extract", when=at(1)),
    )
    assert fired(result) == []
    result = await harness.send(flow_run("Completed", flow="load", when=at(2)))
    assert fired(result) == ["sequence-etls:triggered"]


async def test_nested_composites(harness: Harness) -> None:
    inner = {"type": "compound", "require": "any", "triggers": [child("a"), child("b")]}
    harness.load(composite("sequence", [inner, child("c")]))
    assert fired(await harness.send(flow_run("Completed", flow="b", when=at(0)))) == []
    assert fired(await harness.send(flow_run("Completed", flow="c", when=at(1)))) == [
        "sequence-etls:triggered"
    ]


async def test_cascade_guard_stops_deep_chains(harness: Harness) -> None:
    harness.load(failing(threshold=1))  # harness limit: depth 3
    event = flow_run("Failed", when=at(0))
    event.related.append(
        {  # type: ignore[arg-type]
            "prefect.resource.id": "tripwire.automation.x",
            "prefect.resource.role": CAUSE_ROLE,
            DEPTH_LABEL: "3",
        }
    )
    result = await harness.send(event)
    assert fired(result) == []
    (warning,) = published(result, EVENTS_SUBJECT)
    assert warning["event"] == "tripwire.automation.loop-detected"
    assert warning["payload"]["depth"] == 4
    assert (await harness.reasons())[-1][0] == "stopped"


async def test_triggered_events_carry_their_depth(harness: Harness) -> None:
    harness.load(failing(threshold=1))
    result = await harness.send(flow_run("Failed", when=at(0)))
    (announcement,) = published(result, EVENTS_SUBJECT)
    cause = [r for r in announcement["related"] if r["prefect.resource.role"] == CAUSE_ROLE]
    assert cause[0][DEPTH_LABEL] == "1"


async def test_a_late_completion_resolves_a_disarmed_proactive_firing(harness: Harness) -> None:
    harness.load(not_completed())
    await harness.send(flow_run("Running", run="slow", when=at(0)))
    assert fired(await harness.due(at(60))) == ["runs-finish-within-1h:triggered"]
    assert fired(await harness.due(at(120))) == []  # disarmed: it does not fire again
    late = await harness.send(flow_run("Completed", run="slow", when=at(90)))
    assert fired(late) == ["runs-finish-within-1h:resolved"]
    assert fired(await harness.send(flow_run("Completed", run="slow", when=at(91)))) == []
    assert await harness.open_windows() == 0


async def test_a_paused_proactive_window_neither_fires_nor_holds_the_timer(
    harness: Harness,
) -> None:
    heartbeat = not_completed(after=[], for_each=[], within="10m")
    harness.load(heartbeat)
    await harness.due(at(0))
    harness.load({**heartbeat, "enabled": False})
    result = await harness.due(at(30))
    assert fired(result) == []
    assert result.next_due is None  # not the paused window's end, long past
    harness.load(heartbeat)
    assert fired(await harness.due(at(31))) == ["runs-finish-within-1h:triggered"]
