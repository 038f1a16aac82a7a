"""Events left in JetStream while the engine is down are all stored once it is back."""

from __future__ import annotations

import uuid

from tests.support import StartEngine
from tripwire.engine import Role


async def test_events_waiting_in_jetstream_are_stored_once_after_a_restart(
    start_engine: StartEngine, tmp_path
) -> None:
    home = tmp_path / "shared-home"
    ids = [str(uuid.uuid4()) for _ in range(1200)]
    events = [
        {"event": "restart.test", "resource": {"prefect.resource.id": f"r.{i}"}, "id": i}
        for i in ids
    ]
    # An api-only engine: events go into JetStream, nothing stores them.
    api = await start_engine(roles=frozenset({Role.api}), home=home)
    async with api.client() as http:
        for start in range(0, len(events), 500):
            assert (
                await http.post("/api/events", json=events[start : start + 500])
            ).status_code == 202
        # resend a slice: deduplicated by JetStream
        assert (await http.post("/api/events", json=events[:100])).status_code == 202
    await api.stop()
    assert await api.engine.store.count() == 0

    worker = await start_engine(home=home)
    assert await worker.wait_stored(len(ids), timeout=30) == len(ids)
    # a third start over the same data stores nothing twice
    await worker.stop()
    again = await start_engine(home=home)
    async with again.client() as http:
        assert (await http.get("/api/health")).json()["store_consumer"]["lag"] == 0
    assert await again.engine.store.count() == len(ids)


async def test_engine_sweeps_events_past_retention(start_engine: StartEngine) -> None:
    from datetime import timedelta

    from events import clock

    running = await start_engine(event_retention="1d")
    old = {
        "event": "old",
        "resource": {"prefect.resource.id": "r"},
        "occurred": (clock.now() - timedelta(days=2)).isoformat(),
    }
    fresh = {"event": "fresh", "resource": {"prefect.resource.id": "r"}}
    async with running.client() as http:
        assert (await http.post("/api/events", json=[old, fresh])).status_code == 202
    await running.wait_stored(2)
    assert await running.engine.sweep_once() == 1
    assert await running.engine.store.count() == 1
