"""SLAs in a running engine: applied over HTTP and from files, misses and recoveries on the
bus with their actions run, the timer process told of new windows, restarts, leadership."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from events import clock
from events.filters import EventFilter
from events.model import Event
from sla.leader import Leadership
from tests.support import Running, StartEngine
from tests.tripwire.test_cli_automations import invoke
from tripwire.database import create_engine
from tripwire.engine import Role
from tripwire.settings import Settings

ETL: dict[str, Any] = {
    "name": "etl-within-1h",
    "kind": "duration",
    "start": ["prefect.flow-run.Running"],
    "expect": ["prefect.flow-run.Completed"],
    "for_each": ["prefect.resource.id"],
    "within": "1h",
    "actions": [
        {
            "type": "emit-event",
            "event": "ops.sla.{{ sla.state }}",
            "resource": {
                "prefect.resource.id": "ops.{{ sla.name }}.{{ sla.key['prefect.resource.id'] }}"
            },
        }
    ],
    "actions_on_resolve": [
        {
            "type": "emit-event",
            "event": "ops.sla.{{ sla.state }}",
            "resource": {"prefect.resource.id": "ops.{{ sla.name }}"},
        }
    ],
}


def run_event(state: str, run: str = "r1") -> dict[str, Any]:
    event = Event(
        occurred=clock.now(),
        event=f"prefect.flow-run.{state}",
        resource={"prefect.resource.id": f"prefect.flow-run.{run}"},
    )
    return event.model_dump(mode="json")


def named(name: str) -> EventFilter:
    return EventFilter.model_validate({"event": {"name": [name]}})


async def stored(engine: Running, name: str, count: int, timeout: float = 15) -> None:
    """Wait (polling the store) until `count` events of that name are stored."""
    store = engine.engine.store
    async with asyncio.timeout(timeout):
        while await store.count(named(name)) < count:
            await asyncio.sleep(0.02)
    assert await store.count(named(name)) == count


async def post(engine: Running, *events: dict[str, Any]) -> None:
    async with engine.client() as client:
        response = await client.post("/api/events", json=list(events))
    assert response.status_code == 202, response.text


async def apply(engine: Running, *slas: dict[str, Any]) -> list[dict[str, Any]]:
    async with engine.client() as client:
        response = await client.post("/api/slas/apply", json={"slas": list(slas)})
    assert response.status_code == 200, response.text
    changes: list[dict[str, Any]] = response.json()
    return changes


async def test_a_missed_duration_runs_its_actions_and_recovers(engine: Running) -> None:
    assert [c["kind"] for c in await apply(engine, ETL)] == ["created"]
    started = clock.now()
    await post(engine, run_event("Running"))
    await engine.wait_stored(1)
    pipeline = engine.engine.pipeline
    assert (await pipeline.run_due(started + timedelta(minutes=59))).messages == []

    missed = await pipeline.run_due(started + timedelta(hours=1, seconds=1))
    assert len(missed.messages) == 2  # the event and one action request
    await stored(engine, "tripwire.sla.missed", 1)
    await stored(engine, "ops.sla.missed", 1)  # the emit-event action ran, templated
    (action_event,) = (await engine.engine.store.read(named("ops.sla.missed"))).events
    assert action_event.resource.id == "ops.etl-within-1h.prefect.flow-run.r1"
    async with engine.client() as client:
        (listed,) = (await client.get("/api/slas")).json()
        assert listed["missed"] == 1
        shown = (await client.get("/api/slas/etl-within-1h")).json()
    assert shown["windows"][0]["state"] == "missed"
    assert shown["windows"][0]["key"] == ["prefect.flow-run.r1"]
    async with engine.client() as client:
        metrics = (await client.get("/metrics")).text
    assert 'tripwire_sla_keys{sla="etl-within-1h",state="missed"} 1.0' in metrics
    assert 'tripwire_sla_events_total{sla="etl-within-1h",state="missed"}' in metrics

    await post(engine, run_event("Completed"))
    await stored(engine, "tripwire.sla.recovered", 1)
    await stored(engine, "ops.sla.recovered", 1)
    assert (await pipeline.run_due(started + timedelta(hours=3))).messages == []
    await stored(engine, "tripwire.sla.missed", 1)


async def test_apply_and_status_from_the_command_line(engine: Running, tmp_path: Path) -> None:
    import yaml

    file = tmp_path / "slas.yaml"
    file.write_text(yaml.safe_dump({"slas": [ETL]}))
    code, out, err = await invoke("apply", "-f", str(file), "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == ["created SLA etl-within-1h"]
    code, out, _ = await invoke("apply", "-f", str(file), "--dry-run", "--api", engine.url)
    assert out.splitlines() == ["unchanged SLA etl-within-1h", "dry run: nothing was changed"]

    await post(engine, run_event("Running", "r7"))
    await engine.wait_stored(1)
    code, out, _ = await invoke("sla", "ls", "--api", engine.url)
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["NAME", "KIND", "SEVERITY"]
    assert row.split()[:6] == ["etl-within-1h", "duration", "warning", "yes", "1", "0"]
    code, out, _ = await invoke("sla", "status", "etl-within-1h", "--api", engine.url)
    assert code == 0
    assert "prefect.flow-run.r7  ok" in out
    code, _, err = await invoke("sla", "status", "nope", "--api", engine.url)
    assert code == 1
    assert "no SLA is named" in err


async def test_the_timer_process_is_told_of_windows_opened_elsewhere(
    start_engine: StartEngine, settings_factory: Callable[..., Settings]
) -> None:
    database = f"sqlite+aiosqlite:///{settings_factory().home / 'shared.db'}"
    worker = await start_engine(roles=frozenset({Role.api, Role.worker}), database_url=database)
    timers = await start_engine(roles=frozenset({Role.sla}), database_url=database)
    await apply(worker, ETL)
    await post(worker, run_event("Running", "r2"))
    await worker.wait_stored(1)
    (row,) = await worker.engine.slas.windows((await worker.engine.slas.get(ETL["name"])).id)
    due = row.due
    async with asyncio.timeout(10):  # a core NATS notice, not the 5 s poll
        while timers.engine.timer.next != due:
            await asyncio.sleep(0.02)
    async with timers.client() as client:
        health = (await client.get("/api/health")).json()
    assert health["timers"] == {"leader": True, "next_due": due.isoformat()}


@pytest.mark.parametrize("catch_up", ["fire", "skip"])
async def test_windows_survive_a_restart_and_fire_once(
    start_engine: StartEngine, tmp_path: Path, catch_up: str
) -> None:
    home = tmp_path / "kept"
    first = await start_engine(home=home)
    await apply(first, {**ETL, "catch_up": catch_up})
    started = clock.now()
    await post(first, run_event("Running", "r3"))
    await first.wait_stored(1)
    await first.stop()

    second = await start_engine(home=home)
    due = started + timedelta(hours=2)  # the deadline passed while the engine was down
    result = await second.engine.pipeline.run_due(due)
    assert (await second.engine.pipeline.run_due(due + timedelta(seconds=1))).messages == []
    if catch_up == "skip":
        assert result.messages == []
        assert await second.engine.store.count(named("tripwire.sla.missed")) == 0
        return
    (message, _) = result.messages
    assert orjson.loads(message.body)["payload"]["late"] is True
    await stored(second, "tripwire.sla.missed", 1)


async def test_a_miss_is_published_within_a_second_of_its_deadline(engine: Running) -> None:
    """The one test on the real clock: the timer wakes at the instant, not on a poll."""
    await apply(engine, {**ETL, "within": "1s", "actions": []})
    await post(engine, run_event("Running", "r9"))
    await stored(engine, "tripwire.sla.missed", 1, timeout=10)
    (missed,) = (await engine.engine.store.read(named("tripwire.sla.missed"))).events
    due = datetime.fromisoformat(missed.payload["window"]["end"])
    lag = (missed.received - due).total_seconds()
    assert 0 <= lag < 1.0, f"the miss was decided {lag:.3f}s after its deadline"
    assert missed.payload["late"] is False


async def test_one_timer_process_leads_and_a_standby_takes_over(database_url: str) -> None:
    db = create_engine(database_url)
    first, second = Leadership(db, "ns"), Leadership(db, "ns")
    other_namespace = Leadership(db, "other")
    try:
        if not database_url.startswith("postgresql"):  # one host, one engine: no lock
            assert await first.held()
            assert await second.held()
            return
        assert await first.held()
        assert await first.held()  # still
        assert not await second.held()
        assert await other_namespace.held()
        await first.release()
        assert await second.held()
        assert second.leading
        assert not first.leading
    finally:
        for lead in (first, second, other_namespace):
            await lead.release()
        await db.dispose()
