"""Prefect's events websocket protocol: `/api/events/in` and `/api/events/out`.

With the `prefect` subprotocol the first message is `{"type": "auth", "token": ...}`,
answered `{"type": "auth_success"}`; without it, auth comes from the upgrade request's
Authorization header. `in` takes one event JSON per text frame; `out` takes a
`{"type": "filter", "filter": {...}, "backfill": true}` message and then streams
`{"type": "event", "event": {...}}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.websockets import WebSocketState

from events.bus import Bus
from events.errors import BusUnavailable, EventTooLarge, InvalidEvent
from events.filters import EventFilter, EventOrder
from events.live import LIVE_QUEUE_LIMIT, OVERFLOW, live_events
from events.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED
from events.model import ReceivedEvent
from events.parsing import describe, encode, receive_events_json
from events.store import EventStore

log = logging.getLogger("tripwire.websocket")

POLICY_VIOLATION = 1008
PROTOCOL_ERROR = 1002
TRY_AGAIN_LATER = 1013
BACKFILL_LIMIT = 1000
AUTH_TIMEOUT = 10.0  # seconds for a `prefect` client's first (auth) message

# Checks a token (the auth message's) or an Authorization header; True = allowed.
TokenCheck = Callable[[str | None], bool]
HeaderCheck = Callable[[str | None], bool]


def _reason(text: str) -> str:
    # A close reason is at most 123 bytes.
    data = text.encode()[:123]
    return data.decode(errors="ignore")


async def accept(websocket: WebSocket, token_ok: TokenCheck, header_ok: HeaderCheck) -> bool:
    """Accept and authenticate; False when the socket was closed instead."""
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    if "prefect" not in offered:
        if not header_ok(websocket.headers.get("authorization")):
            await websocket.close(
                POLICY_VIOLATION, reason="authentication required: send an Authorization header"
            )
            return False
        await websocket.accept()
        return True
    await websocket.accept(subprotocol="prefect")
    try:
        async with asyncio.timeout(AUTH_TIMEOUT):  # a silent client must not hold a socket
            message = orjson.loads(await websocket.receive_text())
    except TimeoutError:
        await _close(
            websocket,
            POLICY_VIOLATION,
            f"no auth message within {AUTH_TIMEOUT:.0f}s: send "
            '{"type": "auth", "token": ...} first',
        )
        return False
    except (orjson.JSONDecodeError, WebSocketDisconnect):
        await _close(
            websocket, POLICY_VIOLATION, 'expected an auth message: {"type": "auth", "token": ...}'
        )
        return False
    if not isinstance(message, dict) or message.get("type") != "auth":
        await _close(
            websocket, POLICY_VIOLATION, 'expected an auth message: {"type": "auth", "token": ...}'
        )
        return False
    if not token_ok(message.get("token")):
        await _close(
            websocket,
            POLICY_VIOLATION,
            "invalid token: use TRIPWIRE_API_KEY or TRIPWIRE_API_AUTH_STRING",
        )
        return False
    await websocket.send_text('{"type":"auth_success"}')
    return True


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError):
            await websocket.close(code, reason=_reason(reason))


def build_router(
    bus: Bus,
    store: EventStore,
    token_ok: TokenCheck,
    header_ok: HeaderCheck,
    *,
    reader_token_ok: TokenCheck | None = None,
    reader_header_ok: HeaderCheck | None = None,
) -> APIRouter:
    """The two websocket routes; `out` only reads, so it also takes the `reader_*`
    credentials (read-only keys) when given."""
    read_token_ok = reader_token_ok or token_ok
    read_header_ok = reader_header_ok or header_ok
    router = APIRouter(prefix="/api/events")

    @router.websocket("/in")
    async def events_in(websocket: WebSocket) -> None:
        if not await accept(websocket, token_ok, header_ok):
            return
        try:
            while True:
                text = await websocket.receive_text()
                try:
                    events = receive_events_json(text.encode())
                    encoded = encode(events)
                except InvalidEvent as exc:
                    reason = "too_large" if isinstance(exc, EventTooLarge) else "invalid"
                    EVENTS_REJECTED.labels("websocket", reason).inc()
                    await _close(websocket, POLICY_VIOLATION, f"invalid event: {exc}")
                    return
                try:
                    await bus.publish_events(encoded)
                except BusUnavailable as exc:
                    EVENTS_REJECTED.labels("websocket", "bus_unavailable").inc()
                    await _close(websocket, TRY_AGAIN_LATER, str(exc))
                    return
                EVENTS_ACCEPTED.labels("websocket").inc(len(events))
        except WebSocketDisconnect:
            return

    @router.websocket("/out")
    async def events_out(websocket: WebSocket) -> None:
        if not await accept(websocket, read_token_ok, read_header_ok):
            return
        try:
            message = orjson.loads(await websocket.receive_text())
            if not isinstance(message, dict) or message.get("type") != "filter":
                await _close(
                    websocket,
                    PROTOCOL_ERROR,
                    'expected a filter message: {"type": "filter", "filter": {...}}',
                )
                return
            flt = EventFilter.model_validate(message.get("filter") or {})
        except (orjson.JSONDecodeError, ValidationError) as exc:
            detail = (
                str(describe(exc, "filter")) if isinstance(exc, ValidationError) else "not JSON"
            )
            await _close(websocket, PROTOCOL_ERROR, f"invalid filter: {detail}")
            return
        except WebSocketDisconnect:
            return
        await _stream(websocket, bus, store, flt, backfill=bool(message.get("backfill", True)))

    return router


async def _stream(
    websocket: WebSocket, bus: Bus, store: EventStore, flt: EventFilter, *, backfill: bool
) -> None:
    async with live_events(bus) as live:

        async def watch_disconnect() -> None:
            # Nothing is expected from the client now; reading is how we learn it left.
            with contextlib.suppress(Exception):
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
            live.end()

        watcher = asyncio.create_task(watch_disconnect())
        sent: set[str] = set()
        try:
            if backfill:
                page = await store.read(
                    flt.model_copy(update={"order": EventOrder.DESC}), BACKFILL_LIMIT, count=False
                )
                for event in reversed(page.events):
                    sent.add(str(event.id))
                    await websocket.send_text(
                        '{"type":"event","event":' + event.model_dump_json() + "}"
                    )
            while (data := await live.next()) is not None:
                if data == OVERFLOW:
                    log.warning(
                        "a live events subscriber fell %d events behind; closing it",
                        LIVE_QUEUE_LIMIT,
                    )
                    await _close(websocket, TRY_AGAIN_LATER, "too slow to keep up; reconnect")
                    return
                event = ReceivedEvent.model_validate_json(data)
                if str(event.id) in sent or not flt.includes(event):
                    continue
                await websocket.send_text('{"type":"event","event":' + data.decode() + "}")
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            watcher.cancel()
