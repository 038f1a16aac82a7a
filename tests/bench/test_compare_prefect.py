"""`bench compare-prefect`: its counting, and a whole run at a tiny size against a real
Prefect server and `tripwire up`, so that the benchmark cannot rot."""

from __future__ import annotations

from typing import Any

import pytest

from bench import compare_prefect
from bench.compare_prefect import PROBE_AUTOMATION, tally
from tests.support import require_venv

T0 = "2026-01-01T00:00:00"


def _event(n: int, resource: str = "bench.resource.0", name: str = compare_prefect.EVENT) -> Any:
    return {
        "id": f"event-{n}-{resource}",
        "event": name,
        "occurred": f"{T0}.{n:03d}000Z",
        "received": f"{T0}.{n + 1:03d}000Z",
        "resource": {"prefect.resource.id": resource},
        "payload": {"n": n},
    }


def _triggered(event: Any, occurred: str, received: str, automation: str = "a") -> Any:
    return {
        "event": "x.automation.triggered",
        "occurred": occurred,
        "received": received,
        "resource": {"prefect.resource.name": automation},
        "payload": {"triggering_event": event},
    }


def _executed(event: Any, occurred: str) -> Any:
    cause = {"prefect.resource.id": f"prefect.event.{event['id']}"}
    return {
        "occurred": occurred,
        "related": [
            {"prefect.resource.id": "prefect.automation.1", "prefect.resource.role": "automation"},
            {**cause, "prefect.resource.role": "triggering-event"},
        ],
    }


def test_tally_counts_each_event_once_and_leaves_the_probe_out() -> None:
    events = [_event(0), _event(1), _event(2)]
    probe = _event(9, resource="bench.probe", name="bench.probe")
    triggered = [
        _triggered(events[0], f"{T0}.000000Z", f"{T0}.010000Z"),
        _triggered(events[1], f"{T0}.001000Z", f"{T0}.030000Z"),
        _triggered(events[1], f"{T0}.001000Z", f"{T0}.040000Z"),  # the same event again
        _triggered(probe, f"{T0}.009000Z", f"{T0}.020000Z", PROBE_AUTOMATION),
        _triggered(events[2], f"{T0}.002000Z", f"{T0}.050000Z"),
    ]
    executed = [
        _executed(events[0], f"{T0}.100000Z"),
        _executed(probe, f"{T0}.100000Z"),
        _executed(events[2], f"{T0}.102000Z"),
        _executed(events[2], f"{T0}.103000Z"),
    ]

    found = tally("tripwire", triggered, executed)

    assert sorted(found.fired) == [0, 1, 2]
    assert found.duplicate_firings == 1
    assert sorted(found.acted) == [0, 2]  # event 1's action is missing
    assert found.duplicate_actions == 1
    # tripwire's firing time is the record's `received`; latency from the event's `occurred`
    assert found.latencies_ms(found.fired) == pytest.approx([10.0, 29.0, 48.0], abs=0.01)
    assert found.latencies_ms(found.received) == pytest.approx([1.0, 1.0, 1.0], abs=0.01)
    assert found.latencies_ms(found.acted) == pytest.approx([100.0, 100.0], abs=0.01)


def test_prefect_firing_time_is_the_records_occurred() -> None:
    event = _event(5)
    found = tally("prefect", [_triggered(event, f"{T0}.025000Z", f"{T0}.900000Z")], [])
    assert found.latencies_ms(found.fired) == pytest.approx([20.0], abs=0.01)


def test_sizes_are_automations_by_events() -> None:
    assert compare_prefect.parse_sizes("100x2000, 1000X10000") == [(100, 2000), (1000, 10000)]


def _figures(per_s: float, p99: float) -> dict[str, Any]:
    latency = {"p50": p99 / 2, "p99": p99}
    return {
        "firings": 10,
        "firings_missing": 0,
        "wall_seconds": 10 / per_s,
        "firings_per_s": per_s,
        "latency_ms": latency,
        "action_latency_ms": latency,
        "received_latency_ms": latency,
        "client_events_per_s": 1000.0,
    }


def test_a_failed_round_is_reported_and_left_out_of_the_medians() -> None:
    rounds: list[dict[str, Any]] = [
        {"tripwire": _figures(1000.0, 10.0), "prefect": _figures(10.0, 2000.0)},
        {"error": "the engine was not healthy"},
        {"tripwire": _figures(3000.0, 30.0), "prefect": _figures(30.0, 4000.0)},
    ]

    size = compare_prefect.summary(100, 10, rounds)

    assert size["rounds_failed"] == 1
    assert size["tripwire"]["firings_per_s"] == 2000.0
    assert size["prefect"]["latency_ms"]["p99"] == 3000.0
    assert size["ratios"] == {"firings_per_s": 100.0, "latency_p50": 150.0, "latency_p99": 150.0}
    assert size["targets_met"] == {"firings_per_s_50x": True, "latency_p99_100x": True}


@pytest.mark.prefect
@pytest.mark.slow
def test_both_systems_fire_once_for_every_event() -> None:
    """A whole run at 3 automations and 30 events: every firing and action counted, once."""
    require_venv(".venv-prefect", "prefect")

    result = compare_prefect.run(sizes=[(3, 30)], rounds=1, timeout=60.0, stall=30.0)

    (size,) = result["sizes"]
    assert (size["automations"], size["events"]) == (3, 30)
    for system in compare_prefect.SYSTEMS:
        (figures,) = (r[system] for r in size["rounds"])
        assert figures["firings"] == 30, system
        assert figures["firings_missing"] == 0, system
        assert figures["duplicate_firings"] == 0, system
        assert figures["actions"] == 30, system
        assert figures["duplicate_actions"] == 0, system
        assert figures["latency_ms"]["p99"] is not None, system
        assert figures["firings_per_s"] > 0, system
    assert size["ratios"]["firings_per_s"] is not None
