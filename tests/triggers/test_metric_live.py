"""A metric trigger in a running engine, on SQLite and PostgreSQL: flow-run events in over
HTTP, the timer's passes at ticks of a moved clock, a restart in the middle of a streak,
the firing and its resolve on the bus, and the values in the decisions trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from events import clock
from events.filters import EventFilter
from tests.support import Running, StartEngine
from tests.triggers.conftest import flow_run
from tests.triggers.test_live import action_requests, post, stored
from triggers.metrics import tick_at

SLOW: dict[str, Any] = {
    "name": "etl-slow",
    "trigger": {
        "type": "metric",
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "metric": {
            "name": "duration",
            "threshold": 30,
            "operator": ">",
            "range": "5m",
            "firing_for": "20s",
        },
    },
    "actions": [{"type": "do-nothing"}],
    "actions_on_resolve": [{"type": "do-nothing"}],
}
FIRINGS = EventFilter.model_validate({"event": {"prefix": ["tripwire.automation."]}})


def runs(name: str, running: datetime, seconds: float) -> list[Any]:
    return [
        flow_run("Running", run=name, when=running),
        flow_run("Completed", run=name, when=running + timedelta(seconds=seconds)),
    ]


async def tick(running: Running, clock_: clock.FrozenClock, at: datetime) -> None:
    """Move the clock to `at` and run the timer's pass (the engine's own timer may run the
    same tick first: a tick is evaluated once either way)."""
    clock_.current = at
    await running.engine.pipeline.run_due(at)


async def test_a_metric_trigger_fires_and_resolves_across_a_restart(
    start_engine: StartEngine, database_url: str
) -> None:
    start = tick_at(datetime.now(UTC)) + timedelta(minutes=1)
    with clock.frozen_clock(start) as moved:
        first = await start_engine(database_url=database_url)
        async with first.client() as client:
            response = await client.post("/api/automations/", json=SLOW)
            assert response.status_code == 201, response.text
        # One run of 50 s ended before `start`: the average is over 30 s from then on.
        await post(first, *runs("a", start - timedelta(seconds=90), 50))
        await stored(first, EventFilter.model_validate({"event": {"prefix": ["prefect."]}}), 2)
        await tick(first, moved, start)
        await tick(first, moved, start + timedelta(seconds=10))  # true for 10 s of 20 s
        await first.stop()

        # The streak is in the database: the next engine fires at 20 s, not 20 s from now.
        second = await start_engine(database_url=database_url)
        await tick(second, moved, start + timedelta(seconds=20))
        await stored(second, FIRINGS, 1)
        (fired,) = (await second.engine.store.read(FIRINGS)).events
        assert fired.event == "tripwire.automation.triggered"
        assert fired.occurred == start + timedelta(seconds=20)

        # Two fast runs bring the average to 20 s: resolved 20 s after the first tick
        # that sees them.
        later = start + timedelta(seconds=30)
        await post(second, *runs("b", later, 5), *runs("c", later, 5))
        await stored(second, EventFilter.model_validate({"event": {"prefix": ["prefect."]}}), 6)
        for seconds in (40, 50, 60):
            await tick(second, moved, start + timedelta(seconds=seconds))
        await stored(second, FIRINGS, 2)
        states = [e.event for e in (await second.engine.store.read(FIRINGS)).events]
        assert sorted(states) == ["tripwire.automation.resolved", "tripwire.automation.triggered"]

        requests = await action_requests(second)
        assert sorted(r.state.value for r in requests) == ["resolved", "triggered"]

        async with second.client() as client:
            decisions = (
                await client.get("/api/automations/etl-slow/decisions", params={"last": 20})
            ).json()
        reasons = [(d["outcome"], d["reason"]) for d in decisions]
        assert ("measured", "duration 50s > 30s over 5m (1 run): true for 10s of 20s") in reasons
        assert ("fired", "fired: duration 50s > 30s over 5m (1 run): true for 20s") in reasons
        assert ("resolved", "resolved: duration 20s > 30s over 5m (3 runs): false for 20s") in (
            reasons
        )
