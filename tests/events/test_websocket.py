"""Prefect's events websocket protocol on /api/events/in and /api/events/out."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.support import Running, StartEngine


def event(
    name: str = "ws.happened", resource: str = "ws.resource", **fields: Any
) -> dict[str, Any]:
    return {
        "event": name,
        "resource": {"prefect.resource.id": resource},
        "id": str(uuid.uuid4()),
        **fields,
    }


async def prefect_socket(engine: Running, path: str, token: str | None = None) -> ClientConnection:
    ws = await websockets.connect(
        engine.ws_url + path, subprotocols=[websockets.Subprotocol("prefect")]
    )
    await ws.send(json.dumps({"type": "auth", "token": token}))
    return ws


async def test_in_with_prefect_subprotocol_auth_then_events(engine: Running) -> None:
    sent = [event() for _ in range(5)]
    ws = await prefect_socket(engine, "/api/events/in")
    assert json.loads(await ws.recv()) == {"type": "auth_success"}
    assert ws.subprotocol == "prefect"
    for item in sent:
        await ws.send(json.dumps(item))
    pong = await ws.ping()
    await asyncio.wait_for(pong, 5)  # Prefect's client confirms delivery this way
    await ws.close()
    await engine.wait_stored(5)
    for item in sent:
        assert await engine.engine.store.get(item["id"]) is not None


async def test_in_without_subprotocol_takes_events_directly(engine: Running) -> None:
    async with websockets.connect(engine.ws_url + "/api/events/in") as ws:
        await ws.send(json.dumps(event()))
        await asyncio.wait_for(await ws.ping(), 5)
    await engine.wait_stored(1)


async def test_in_closes_with_the_field_at_fault_and_keeps_what_came_before(
    engine: Running,
) -> None:
    good = event()
    ws = await prefect_socket(engine, "/api/events/in")
    await ws.recv()
    await ws.send(json.dumps(good))
    await ws.send(json.dumps({"event": "x", "resource": {}}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "resource" in closed.value.rcvd.reason
    await engine.wait_stored(1)
    assert await engine.engine.store.get(good["id"]) is not None


async def test_first_message_must_be_auth(engine: Running) -> None:
    ws = await websockets.connect(
        engine.ws_url + "/api/events/in", subprotocols=[websockets.Subprotocol("prefect")]
    )
    await ws.send(json.dumps(event()))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "auth" in closed.value.rcvd.reason


async def test_a_client_that_never_authenticates_is_closed(
    engine: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("events.websocket.AUTH_TIMEOUT", 0.2)
    ws = await websockets.connect(
        engine.ws_url + "/api/events/out", subprotocols=[websockets.Subprotocol("prefect")]
    )
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)  # it sends nothing
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "no auth message within" in closed.value.rcvd.reason


async def received_events(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while len(out) < count:
            message = json.loads(await ws.recv())
            assert message["type"] == "event"
            out.append(message["event"])
    return out


async def test_out_backfills_then_streams_live_without_duplicates(engine: Running) -> None:
    old = [event("out.old"), event("out.old"), event("other.kind")]
    async with engine.client() as http:
        assert (await http.post("/api/events", json=old)).status_code == 202
    await engine.wait_stored(3)
    # published but, as far as the socket knows, maybe not stored yet: must still come once
    async with engine.client() as http:
        await http.post("/api/events", json=[event("out.fresh")])
    ws = await prefect_socket(engine, "/api/events/out")
    assert json.loads(await ws.recv())["type"] == "auth_success"
    await ws.send(
        json.dumps({"type": "filter", "filter": {"event": {"prefix": ["out."]}}, "backfill": True})
    )
    live = [event("out.live"), event("other.live"), event("out.live")]
    async with engine.client() as http:
        await http.post("/api/events", json=live)
    got = await received_events(ws, 5)
    ids = [e["id"] for e in got]
    expected = {old[0]["id"], old[1]["id"], live[0]["id"], live[2]["id"]}
    assert expected <= set(ids)
    assert len(ids) == len(set(ids)) == 5
    assert all(e["event"].startswith("out.") for e in got)
    # nothing else arrives: no duplicates of the backfill from the live side
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), 0.5)
    await ws.close()


async def test_out_rejects_a_bad_filter_with_the_reason(engine: Running) -> None:
    ws = await prefect_socket(engine, "/api/events/out")
    await ws.recv()
    await ws.send(json.dumps({"type": "filter", "filter": {"occurred": {"since": "not a time"}}}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1002
    assert "occurred.since" in closed.value.rcvd.reason


async def test_websockets_need_the_token_when_auth_is_on(start_engine: StartEngine) -> None:
    running = await start_engine(api_key="s3cret")
    ws = await prefect_socket(running, "/api/events/in", token="wrong")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    ws = await prefect_socket(running, "/api/events/in", token="s3cret")
    assert json.loads(await ws.recv()) == {"type": "auth_success"}
    await ws.close()
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(running.ws_url + "/api/events/out")
    async with websockets.connect(
        running.ws_url + "/api/events/in", additional_headers={"Authorization": "Bearer s3cret"}
    ) as ws:
        await ws.send(json.dumps(event()))
        await asyncio.wait_for(await ws.ping(), 5)
    await running.wait_stored(1)


async def test_read_only_keys_may_follow_events_but_not_send_them(
    start_engine: StartEngine,
) -> None:
    running = await start_engine(api_key="s3cret", api_read_keys=["look"])
    refused = await prefect_socket(running, "/api/events/in", token="look")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(refused.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(
            running.ws_url + "/api/events/in", additional_headers={"Authorization": "Bearer look"}
        )
    following = await prefect_socket(running, "/api/events/out", token="look")
    assert json.loads(await following.recv()) == {"type": "auth_success"}
    await following.close()
    async with websockets.connect(
        running.ws_url + "/api/events/out", additional_headers={"Authorization": "Bearer look"}
    ) as ws:
        await ws.send(json.dumps({"type": "filter", "filter": {}}))
        async with running.client(headers={"Authorization": "Bearer s3cret"}) as http:
            sent = event()
            assert (await http.post("/api/events", json=sent)).status_code == 202
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["event"]["id"] == sent["id"]
