"""tripwire-client's background emitter against real local HTTP servers and a real engine."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest

import tripwire_client.emitter
from events.embedded import free_port
from tests.actions.receivers import Receiver, Reply
from tests.support import Running
from tripwire_client import Emitter, build_event, emit_event

ACCEPTED = Reply(202, '{"accepted": []}', {"content-type": "application/json"})


class Gate:
    """A backoff that holds the sender thread in its first retry until opened."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.calls: list[tuple[int, str | None]] = []

    def __call__(self, attempt: int, retry_after: str | None) -> float:
        self.calls.append((attempt, retry_after))
        self.opened.wait(10)
        return 0.0


def bodies(receiver: Receiver) -> list[list[dict[str, Any]]]:
    return [request.json() for request in receiver.requests]


async def flushed(emitter: Emitter, timeout: float = 5.0) -> None:
    assert await asyncio.to_thread(emitter.flush, timeout), "the emitter did not drain in time"


async def test_batches_and_retries_a_503_with_retry_after() -> None:
    gate = Gate()
    async with Receiver(ACCEPTED) as engine:
        engine.script(Reply(503, "bus down", {"Retry-After": "1"}))
        emitter = Emitter(engine.url(), batch_size=10, backoff=gate)
        ids = [emitter.emit_event("job.step", "job.step.0")]
        await engine.wait_for(1)  # the first event went out alone and got the 503
        ids += [emitter.emit_event("job.step", f"job.step.{i}") for i in range(1, 25)]
        gate.opened.set()
        await flushed(emitter)
    assert [len(body) for body in bodies(engine)] == [1, 1, 10, 10, 4]
    assert gate.calls == [(0, "1")]
    sent = [event["id"] for body in bodies(engine)[1:] for event in body]
    assert sent == ids
    assert (emitter.delivered, emitter.dropped) == (25, 0)
    assert all(r.path == "/api/events" for r in engine.requests)


async def test_full_queue_drops_the_oldest_and_counts_them() -> None:
    gate = Gate()
    async with Receiver(ACCEPTED) as engine:
        engine.script(Reply(503))
        emitter = Emitter(engine.url(), max_queue=5, backoff=gate)
        first = emitter.emit_event("job.step", "job.step.first")
        await engine.wait_for(1)  # the sender holds `first`, the queue is empty
        ids = [emitter.emit_event("job.step", f"job.step.{i}") for i in range(12)]
        assert emitter.dropped == 7
        gate.opened.set()
        await flushed(emitter)
    sent = [event["id"] for body in bodies(engine)[1:] for event in body]
    assert sent == [first, *ids[-5:]]


async def test_an_engine_that_is_down_never_raises_or_blocks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = Emitter(f"http://127.0.0.1:{free_port()}", retries=2, backoff=lambda a, r: 0.0)
    started = time.monotonic()
    for i in range(1000):
        emitter.emit_event("job.step", f"job.step.{i}", payload={"at": time})  # unencodable too
    assert time.monotonic() - started < 1.0  # queued, not sent, by the caller
    with caplog.at_level(logging.WARNING, "tripwire_client"):
        await flushed(emitter, timeout=20)
    assert (emitter.delivered, emitter.dropped) == (0, 1000)
    assert "lost" in caplog.text
    # A process about to end does not wait for an engine known to be away.
    assert emitter.failing
    emitter.emit_event("job.step", "one.more")
    started = time.monotonic()
    assert not emitter.flush_unless_failing(10)
    assert time.monotonic() - started < 1.0


async def test_refused_events_are_dropped_without_retrying() -> None:
    async with Receiver(Reply(422, '{"detail": "bad"}')) as engine:
        emitter = Emitter(engine.url(), backoff=lambda a, r: 0.0)
        emitter.emit_event("job.step", "job.step.1")
        await flushed(emitter)
    assert len(engine.requests) == 1
    assert emitter.dropped == 1


async def test_a_refused_event_does_not_cost_the_rest_of_its_batch() -> None:
    gate = Gate()
    async with Receiver(ACCEPTED) as engine:
        engine.script(Reply(503))
        emitter = Emitter(engine.url(), backoff=gate)
        emitter.emit_event("job.step", "job.step.first")
        await engine.wait_for(1)
        ids = [emitter.emit_event("job.step", f"job.step.{i}") for i in range(4)]
        # the retry of `first` passes; then [0..3] is refused, [0, 1] passes, [2, 3] is
        # refused, [2] passes, [3] is refused for good
        engine.script(ACCEPTED, Reply(422), ACCEPTED, Reply(422), ACCEPTED, Reply(422))
        gate.opened.set()
        await flushed(emitter)
    assert [len(body) for body in bodies(engine)] == [1, 1, 4, 2, 2, 1, 1]
    stored = [event["id"] for i in (1, 3, 5) for event in bodies(engine)[i]]
    assert stored[1:] == ids[:3]
    assert (emitter.delivered, emitter.dropped) == (4, 1)


async def test_a_wrong_api_key_is_not_retried_event_by_event() -> None:
    gate = Gate()
    async with Receiver(Reply(401, '{"detail": "bad key"}')) as engine:
        engine.script(Reply(503))
        emitter = Emitter(engine.url(), backoff=gate)
        emitter.emit_event("job.step", "job.step.0")
        await engine.wait_for(1)
        for i in range(1, 10):
            emitter.emit_event("job.step", f"job.step.{i}")
        gate.opened.set()
        await flushed(emitter)
    assert [len(body) for body in bodies(engine)] == [1, 1, 9]
    assert emitter.dropped == 10


async def test_close_does_not_wait_out_a_long_backoff() -> None:
    emitter = Emitter(f"http://127.0.0.1:{free_port()}", backoff=lambda a, r: 60.0)
    emitter.emit_event("job.step", "job.step.1")
    started = time.monotonic()
    await asyncio.to_thread(emitter.close, 0.2)
    assert time.monotonic() - started < 3.0
    assert emitter.dropped == 1
    emitter.emit_event("job.step", "after.close")  # dropped, not raised
    assert emitter.dropped == 2


async def test_default_emitter_reads_url_and_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Receiver(ACCEPTED) as engine:
        monkeypatch.setenv("TRIPWIRE_URL", engine.url())
        monkeypatch.setenv("TRIPWIRE_API_KEY", "s3cret")
        monkeypatch.delenv("TRIPWIRE_API_URL", raising=False)
        monkeypatch.setattr(tripwire_client.emitter, "_default", None)
        emit_event("job.done", {"prefect.resource.id": "job.1", "team": "data"})
        await flushed(tripwire_client.emitter.default_emitter())
    [request] = engine.requests
    assert request.headers["authorization"] == "Bearer s3cret"
    [event] = request.json()
    assert event["resource"] == {"prefect.resource.id": "job.1", "team": "data"}


async def test_events_are_stored_by_a_real_engine(engine: Running) -> None:
    emitter = Emitter(engine.url)
    event = build_event(
        "client.emitter",
        "job.1",
        related=[{"prefect.resource.id": "airflow.dag.x", "prefect.resource.role": "dag"}],
        payload={"rows": 3},
    )
    emitter.emit(event)
    await flushed(emitter)
    await engine.wait_stored(1)
    stored = await engine.engine.store.get(event["id"])
    assert stored is not None
    assert stored.id.version == 7  # time-ordered ids, as the engine makes them
    assert (stored.event, stored.payload, stored.related[0].role) == (
        "client.emitter",
        {"rows": 3},
        "dag",
    )
    assert json.loads(stored.model_dump_json())["occurred"].startswith(event["occurred"][:19])
