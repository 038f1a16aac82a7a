"""A pong on /api/events/in means every event sent before the ping is on JetStream.

Prefect's events client counts the events before an answered ping as delivered and never
sends them again. These tests check the stream itself, not the store, right after the
pong, with frames read ahead and published in pipelined batches.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.faults.processes import NatsNode
from tests.support import Running, StartEngine, eventually, stream_ids


def event(n: int) -> dict[str, Any]:
    return {
        "event": f"checkpoint.sent.{n}",
        "resource": {"prefect.resource.id": f"checkpoint.{n}"},
        "related": [{"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": "flow"}],
        "id": str(uuid.uuid4()),
    }


async def send_all(ws: ClientConnection, events: list[dict[str, Any]]) -> None:
    for item in events:
        await ws.send(json.dumps(item))


async def test_every_event_before_an_answered_ping_is_on_the_stream(engine: Running) -> None:
    sent = [event(n) for n in range(3000)]
    async with websockets.connect(engine.ws_url + "/api/events/in") as ws:
        await send_all(ws, sent[:1500])
        first = await ws.ping()
        await send_all(ws, sent[1500:])
        second = await ws.ping()
        await asyncio.wait_for(first, 30)
        on_stream = set(await stream_ids(engine.engine.bus))
        assert {e["id"] for e in sent[:1500]} <= on_stream
        await asyncio.wait_for(second, 30)
    on_stream = set(await stream_ids(engine.engine.bus))
    assert {e["id"] for e in sent} <= on_stream


async def test_one_connection_s_events_are_on_the_stream_in_the_order_sent(
    engine: Running,
) -> None:
    sent = [event(n) for n in range(4000)]
    async with websockets.connect(engine.ws_url + "/api/events/in") as ws:
        for start in range(0, len(sent), 700):
            await send_all(ws, sent[start : start + 700])
            if start % 1400 == 0:
                await ws.send(json.dumps(sent[start : start + 1][0] | {"id": str(uuid.uuid4())}))
        await asyncio.wait_for(await ws.ping(), 30)
    ours = {e["id"] for e in sent}
    in_stream_order = [i for i in await stream_ids(engine.engine.bus) if i in ours]
    assert in_stream_order == [e["id"] for e in sent]


async def test_a_bad_frame_mid_run_keeps_what_came_before_and_nothing_after(
    engine: Running,
) -> None:
    before = [event(n) for n in range(600)]
    after = [event(n) for n in range(600, 1200)]
    ws = await websockets.connect(
        engine.ws_url + "/api/events/in", subprotocols=[websockets.Subprotocol("prefect")]
    )
    await ws.send(json.dumps({"type": "auth", "token": None}))
    assert json.loads(await ws.recv()) == {"type": "auth_success"}
    await send_all(ws, before)
    pong = asyncio.ensure_future(await ws.ping())
    await ws.send(json.dumps({"event": "x", "resource": {}}))
    await send_all(ws, after)
    late_pong = asyncio.ensure_future(await ws.ping())
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "resource" in closed.value.rcvd.reason
    assert pong.exception() is None  # the events before the bad frame were published
    # Never answered: the events after the bad frame were not published.
    assert isinstance(late_pong.exception(), websockets.ConnectionClosed)
    on_stream = await stream_ids(engine.engine.bus)
    assert [i for i in on_stream if i in {e["id"] for e in before}] == [e["id"] for e in before]
    assert not {e["id"] for e in after} & set(on_stream)


async def test_a_client_that_vanishes_mid_batch_loses_nothing_it_was_told_was_delivered(
    engine: Running,
) -> None:
    confirmed = [event(n) for n in range(1000)]
    unconfirmed = [event(n) for n in range(1000, 1500)]
    ws = await websockets.connect(engine.ws_url + "/api/events/in")
    await send_all(ws, confirmed)
    await asyncio.wait_for(await ws.ping(), 30)
    await send_all(ws, unconfirmed)
    ws.transport.abort()  # no close frame: the TCP connection is simply gone
    on_stream = set(await stream_ids(engine.engine.bus))
    assert {e["id"] for e in confirmed} <= on_stream
    # The engine takes the next connection as before.
    async with websockets.connect(engine.ws_url + "/api/events/in") as again:
        later = event(2000)
        await again.send(json.dumps(later))
        await asyncio.wait_for(await again.ping(), 30)
    assert later["id"] in set(await stream_ids(engine.engine.bus))


async def test_nats_going_away_mid_stream_answers_no_ping_and_closes_with_try_later(
    start_engine: StartEngine, tmp_path: Path
) -> None:
    node = NatsNode(tmp_path / "nats", "solo")
    node.start()
    try:
        running = await start_engine(nats_url=node.url)
        bus = running.engine.bus
        first = [event(n) for n in range(500)]
        second = [event(n) for n in range(500, 1000)]
        async with websockets.connect(running.ws_url + "/api/events/in") as ws:
            await send_all(ws, first)
            await asyncio.wait_for(await ws.ping(), 30)
            node.kill()
            await send_all(ws, second)
            pong = asyncio.ensure_future(await ws.ping())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 60)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        # Never answered: nothing sent after the outage began was confirmed.
        assert isinstance(pong.exception(), websockets.ConnectionClosed)

        node.start()

        async def bus_back() -> bool:
            return bus.is_connected

        await eventually(bus_back, 60, "the bus reconnected")
        # The client sends again what was not confirmed, as Prefect's client does.
        async with websockets.connect(running.ws_url + "/api/events/in") as ws:
            await send_all(ws, second)
            await asyncio.wait_for(await ws.ping(), 60)
        on_stream = await stream_ids(bus)
        ours = [i for i in on_stream if i in {e["id"] for e in first + second}]
        assert sorted(ours) == sorted(e["id"] for e in first + second)  # each once
    finally:
        node.kill()
