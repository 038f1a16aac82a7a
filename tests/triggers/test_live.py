"""Automations in a running engine: events in over HTTP, firings out on the bus, changes
picked up by a worker in another engine, proactive windows closed by the timer, and the
outbox relay after a crash between commit and publish."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select

from actions.causation import CAUSE_ROLE
from actions.request import ActionRequest
from events import clock
from events.filters import EventFilter
from events.model import Event
from sla.timers import DueTimer
from tests.support import Running, StartEngine, eventually
from tests.triggers.conftest import flow_run
from triggers import state
from triggers.firing import Message
from triggers.tables import outbox
from tripwire.engine import Role
from tripwire.settings import Settings

TRIGGERED = EventFilter.model_validate({"event": {"name": ["tripwire.automation.triggered"]}})

THREE_FAILURES: dict[str, Any] = {
    "name": "three-failures",
    "trigger": {
        "type": "event",
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "expect": ["prefect.flow-run.Failed"],
        "where": "payload.validated_state.type == 'FAILED'",
        "threshold": 3,
        "within": "10m",
    },
    "actions": [{"type": "do-nothing"}, {"type": "do-nothing"}],
}


async def stored(running: Running, flt: EventFilter, count: int, timeout: float = 10) -> None:
    async def enough() -> bool:
        return await running.engine.store.count(flt) >= count

    await eventually(enough, timeout, f"{count} events stored")


async def action_requests(running: Running) -> list[ActionRequest]:
    bus = running.engine.bus
    info = await bus.js.stream_info(bus.names.actions_stream)
    requests = []
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        message = await bus.js.get_msg(bus.names.actions_stream, sequence)
        requests.append(ActionRequest.model_validate_json(message.data))
    return requests


async def post(running: Running, *events: Any) -> None:
    async with running.client() as client:
        body = [e.model_dump(mode="json") for e in events]
        response = await client.post("/api/events", json=body)
        assert response.status_code == 202, response.text


async def test_a_firing_is_announced_and_requests_its_actions(engine: Running) -> None:
    async with engine.client() as client:
        response = await client.post("/api/automations/", json=THREE_FAILURES)
        assert response.status_code == 201, response.text
    now = clock.now()
    failures = [flow_run("Failed", when=now + timedelta(seconds=i)) for i in range(3)]
    await post(engine, *failures)
    await stored(engine, TRIGGERED, 1)

    (announcement,) = (await engine.engine.store.read(TRIGGERED)).events
    assert announcement.resource["prefect.resource.name"] == "three-failures"
    roles = {r.role: r for r in announcement.related}
    assert roles["triggering-event"].id == f"prefect.event.{failures[2].id}"
    assert roles[CAUSE_ROLE]["tripwire.cascade.depth"] == "1"

    requests = await action_requests(engine)
    assert [r.action_index for r in requests] == [0, 1]
    assert {r.triggering_event.id for r in requests if r.triggering_event} == {failures[2].id}
    await engine.engine.pipeline.drop_published()  # else the next batch or poll does it
    async with engine.engine.db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 0

    async with engine.client() as client:
        decisions = (
            await client.get("/api/automations/three-failures/decisions", params={"last": 10})
        ).json()
    assert [d["outcome"] for d in decisions][-1] == "fired"
    assert decisions[-1]["reason"] == "fired: 3 of 3 events within 10m"


async def test_a_worker_in_another_process_picks_up_changes(
    start_engine: StartEngine, settings_factory: Callable[..., Settings]
) -> None:
    database = f"sqlite+aiosqlite:///{settings_factory().home / 'shared.db'}"
    worker = await start_engine(roles=frozenset({Role.worker}), database_url=database)
    api = await start_engine(roles=frozenset({Role.api}), database_url=database)
    before = worker.engine.pipeline.revision
    single = {**THREE_FAILURES, "trigger": {**THREE_FAILURES["trigger"], "threshold": 1}}
    async with api.client() as client:
        assert (await client.post("/api/automations/", json=single)).status_code == 201
    async with asyncio.timeout(5):  # workers poll every 0.5s
        while worker.engine.pipeline.revision == before:
            await asyncio.sleep(0.02)
    await post(api, flow_run("Failed", when=clock.now()))
    await stored(api, TRIGGERED, 1)

    async with api.client() as client:
        response = await client.patch("/api/automations/three-failures", json={"enabled": False})
        assert response.status_code == 204
    paused_at = worker.engine.pipeline.revision
    async with asyncio.timeout(5):
        while worker.engine.pipeline.revision == paused_at:
            await asyncio.sleep(0.02)
    await post(api, flow_run("Failed", run="other", when=clock.now()))
    await stored(api, EventFilter.model_validate({"event": {"prefix": ["prefect."]}}), 2)
    assert await api.engine.store.count(TRIGGERED) == 1


async def test_the_timer_closes_proactive_windows(engine: Running) -> None:
    quiet = {
        "name": "heartbeat",
        "trigger": {
            "type": "event",
            "expect": ["worker.heartbeat"],
            "posture": "Proactive",
            "threshold": 1,
            "within": "15m",
        },
        "actions": [{"type": "do-nothing"}],
    }
    async with engine.client() as client:
        assert (await client.post("/api/automations/", json=quiet)).status_code == 201
    pipeline = engine.engine.pipeline
    start = clock.now()
    opened = await pipeline.run_due(start)
    assert opened.firings == []
    assert opened.next_due is not None
    assert opened.next_due - start == timedelta(minutes=15)
    result = await pipeline.run_due(opened.next_due)
    assert [f.automation.name for f in result.firings] == ["heartbeat"]
    await stored(engine, TRIGGERED, 1)


async def test_due_timer_runs_at_the_instant_it_is_woken_for() -> None:
    calls: list[datetime] = []
    ran = asyncio.Event()

    async def due(now: datetime) -> datetime | None:
        calls.append(now)
        ran.set()
        return None

    timer = DueTimer(due, poll=timedelta(hours=1))
    timer.start()
    try:
        async with asyncio.timeout(5):
            await ran.wait()  # the first run happens at start
        ran.clear()
        timer.wake_at(datetime.now(UTC))
        async with asyncio.timeout(5):
            await ran.wait()
        assert len(calls) == 2
    finally:
        await timer.stop()


async def test_the_relay_publishes_what_a_crash_left_in_the_outbox(engine: Running) -> None:
    event = flow_run("Failed", when=clock.now()).receive()
    async with engine.engine.db.begin() as conn:
        await conn.execute(
            outbox.insert().values(
                id=str(event.id),
                subject=engine.engine.bus.names.events_subject,
                body=orjson.dumps(event.model_dump(mode="json")).decode(),
                created=clock.now() - timedelta(minutes=1),
            )
        )
    assert await engine.engine.pipeline.relay() == 1
    await engine.wait_stored(1)
    assert (await engine.engine.store.get(str(event.id))) is not None
    await engine.engine.pipeline.drop_published()  # else the next batch or poll does it
    async with engine.engine.db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 0


async def _outbox_rows(running: Running) -> int:
    async with running.engine.db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)


async def test_published_messages_leave_the_outbox_with_the_next_transaction(
    start_engine: StartEngine,
) -> None:
    # No worker (no batch transactions) and no poll: only what the test does drops them.
    running = await start_engine(frozenset({Role.sla}), automations_poll=timedelta(hours=1))
    pipeline = running.engine.pipeline
    event = flow_run("Completed", when=clock.now()).receive()
    body = event.model_dump_json().encode()
    message = Message(event.id, running.engine.bus.names.events_subject, body)
    async with running.engine.db.begin() as conn:
        await state.write_outbox(conn, [message])
    await pipeline.publish([message])
    assert await _outbox_rows(running) == 1  # published, and not a commit of its own

    with contextlib.suppress(RuntimeError):
        async with pipeline._transaction():
            raise RuntimeError("rolled back")
    assert await _outbox_rows(running) == 1  # a rolled-back transaction keeps them due

    await pipeline.run_due(clock.now())
    assert await _outbox_rows(running) == 0
    assert await pipeline.relay(older_than=timedelta(0)) == 0  # and nothing to send again


async def test_explain_an_event_without_a_recorded_decision(engine: Running) -> None:
    async with engine.client() as client:
        assert (await client.post("/api/automations/", json=THREE_FAILURES)).status_code == 201
    completed = flow_run("Completed", when=clock.now())
    unmatched = flow_run("Failed", when=clock.now(), payload={"validated_state": {"type": "x"}})
    await post(engine, completed, unmatched)
    await engine.wait_stored(2)
    async with engine.client() as client:
        path = "/api/automations/three-failures/decisions"
        recorded = (await client.get(path, params={"event_id": str(unmatched.id)})).json()
        (computed,) = (await client.get(path, params={"event_id": str(completed.id)})).json()
    assert [(d["outcome"], d["recorded"]) for d in recorded] == [("filtered", True)]
    assert computed["recorded"] is False
    assert computed["outcome"] == "not-expected"
    assert computed["reason"] == "prefect.flow-run.Completed is not among prefect.flow-run.Failed"


async def test_many_pinned_automations_each_fire_only_on_their_own_resource(
    engine: Running,
) -> None:
    # One automation per resource, all on the same event name: the index by resource id
    # hands each event its own automation (and the unpinned one), not all of them.
    def one_resource(name: str, resource: str) -> dict[str, Any]:
        return {
            "name": name,
            "trigger": {
                "type": "event",
                "match": {"prefect.resource.id": resource},
                "expect": ["tests.happened"],
                "threshold": 1,
                "within": 0,
            },
            "actions": [{"type": "do-nothing"}],
        }

    bodies = [one_resource(f"pinned-{i:03d}", f"tests.resource.{i}") for i in range(300)]
    bodies.append(one_resource("every-resource", "tests.resource.*"))
    async with engine.client() as client:
        response = await client.post("/api/automations/apply", json={"automations": bodies})
        assert response.status_code == 200, response.text
    await engine.engine.pipeline.reload()
    sent = [7 * k % 300 for k in range(40)]
    events = [
        Event(
            occurred=clock.now(),
            event="tests.happened",
            resource={"prefect.resource.id": f"tests.resource.{i}"},
        )
        for i in [*sent, 1000]  # 1000: no automation of its own
    ]
    await post(engine, *events)
    await stored(engine, TRIGGERED, 2 * len(sent) + 1)

    firings = (await engine.engine.store.read(TRIGGERED, limit=500)).events
    by_event: dict[str, list[str]] = {}
    for firing in firings:
        (cause,) = [r.id for r in firing.related if r.role == "triggering-event"]
        by_event.setdefault(cause, []).append(firing.resource["prefect.resource.name"])
    for i, event in zip([*sent, 1000], events, strict=True):
        own = [] if i == 1000 else [f"pinned-{i:03d}"]
        assert sorted(by_event[f"prefect.event.{event.id}"]) == sorted([*own, "every-resource"]), i
    assert len(firings) == 2 * len(sent) + 1
