"""The Python client against a real engine, including retries through a NATS outage."""

from __future__ import annotations

import asyncio

import pytest

from events.client import AsyncTripwireClient, TripwireClient, aemit_event, build_event, emit_event
from events.embedded import EmbeddedNats, free_port
from events.errors import BusUnavailable, InvalidEvent
from tests.support import Running, StartEngine


async def test_async_client_sends_in_batches(engine: Running) -> None:
    events = [build_event("client.batch", f"r.{i}", payload={"i": i}) for i in range(1234)]
    async with AsyncTripwireClient(engine.url, batch_size=500) as client:
        ids = await client.emit(events)
    assert ids == [e.id for e in events]
    assert await engine.wait_stored(1234) == 1234


async def test_sync_emit_event_and_refused_input(engine: Running) -> None:
    event_id = await asyncio.to_thread(
        emit_event,
        "client.sync",
        {"prefect.resource.id": "r", "team": "data"},
        related=[{"prefect.resource.id": "dag.x", "prefect.resource.role": "dag"}],
        api_url=engine.url,
    )
    await engine.wait_stored(1)
    stored = await engine.engine.store.get(str(event_id))
    assert stored is not None
    assert stored.resource.get("team") == "data"
    assert stored.related[0].role == "dag"
    assert await aemit_event("client.async", "r", api_url=engine.url)

    def send_bad() -> None:
        with TripwireClient(engine.url, retries=0) as client:
            bad = build_event("x", "r")
            bad.payload["blob"] = "x" * 2_000_000
            client.emit(bad)

    with pytest.raises(InvalidEvent, match="413"):
        await asyncio.to_thread(send_bad)


def test_client_gives_up_when_nothing_answers() -> None:
    with (
        TripwireClient(f"http://127.0.0.1:{free_port()}", retries=0) as client,
        pytest.raises(BusUnavailable, match="after 0 retries"),
    ):
        client.emit(build_event("x", "r"))


async def test_client_retries_until_nats_is_back(start_engine: StartEngine, tmp_path) -> None:
    nats = EmbeddedNats(tmp_path / "nats")
    nats.start()
    try:
        running = await start_engine(nats_url=nats.url)
        nats.stop()
        events = [build_event("client.retry", f"r.{i}") for i in range(10)]

        async def bring_nats_back() -> None:
            # restart once the client has certainly seen a 503
            async with running.client() as http:
                while (await http.post("/api/events", json=[])).status_code != 422:
                    pass
                response = await http.post(
                    "/api/events", json={"event": "probe", "resource": {"prefect.resource.id": "p"}}
                )
                assert response.status_code == 503
            nats.start()

        async with AsyncTripwireClient(running.url, retries=20) as client:
            ids, _ = await asyncio.gather(client.emit(events), bring_nats_back())
        assert ids == [e.id for e in events]
        await running.wait_stored(10, timeout=20)
    finally:
        nats.stop()
