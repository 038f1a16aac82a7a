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
from collections import deque
from collections.abc import Callable

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.websockets import WebSocketState

from events.bus import Bus
from events.checkpoints import Checkpoints, checkpoints
from events.errors import BusUnavailable, EventTooLarge, InvalidEvent
from events.filters import EventFilter, EventOrder
from events.keys import EventMessage
from events.live import LIVE_QUEUE_LIMIT, OVERFLOW, live_events
from events.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED
from events.model import ReceivedEvent
from events.parsing import describe, encode, receive_events_json
from events.store import EventStore

log = logging.getLogger("tripwire.websocket")

POLICY_VIOLATION = 1008
PROTOCOL_ERROR = 1002
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013
BACKFILL_LIMIT = 1000
AUTH_TIMEOUT = 10.0  # seconds for a `prefect` client's first (auth) message
# `/in`, per connection: publishes awaiting JetStream's acks, events per publish, and
# events read but not acknowledged before the socket stops reading (the client then
# waits on TCP).
MAX_IN_FLIGHT = 4
MAX_BATCH = 1000
MAX_UNPUBLISHED = 10_000

# Checks a token (the auth message's) or an Authorization header; True = allowed.
TokenCheck = Callable[[str | None], bool]
HeaderCheck = Callable[[str | None], bool]


def _reason(text: str) -> str:
    # A close reason is at most 123 bytes.
    data = text.encode()[:123]
    return data.decode(errors="ignore")


def _prefect_subprotocol(websocket: WebSocket) -> bool:
    offered = websocket.headers.get("sec-websocket-protocol", "").split(",")
    return "prefect" in (p.strip() for p in offered)


async def accept(websocket: WebSocket, token_ok: TokenCheck, header_ok: HeaderCheck) -> bool:
    """Accept and authenticate; False when the socket was closed instead."""
    if not _prefect_subprotocol(websocket):
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
        held = checkpoints(websocket)
        if held is not None:
            held.hold()  # before accept: no ping can come earlier
        if not await accept(websocket, token_ok, header_ok):
            return
        # With the `prefect` subprotocol the first message was the auth message.
        await _Ingest(bus, held, int(_prefect_subprotocol(websocket))).run(websocket)

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


class _Ingest:
    """One `/in` connection. Frames are validated as they arrive and published in batches,
    several in flight at once; the messages of a batch count as handled, which answers the
    pings that came after them, once JetStream acknowledged it and every batch before it.

    Messages are numbered as the protocol numbers them: every data message since accept,
    the auth message included. Batches are written to NATS in the order the frames came,
    so the stream holds one connection's events in that order.
    """

    def __init__(self, bus: Bus, held: Checkpoints | None, received: int) -> None:
        self.bus = bus
        self.held = held
        self.received = received  # data messages read so far
        self.queued: deque[tuple[int, list[EventMessage]]] = deque()  # (message, events)
        self.queued_events = 0
        self.in_flight: deque[tuple[int, int, asyncio.Task[None]]] = deque()  # (to, n, task)
        self.in_flight_events = 0
        self.starting = False
        self.failure: BaseException | None = None
        self.changed = asyncio.Event()
        if held is not None:
            held.handled(received)

    async def run(self, websocket: WebSocket) -> None:
        """Until the client leaves or a frame is refused, and what came before is published;
        or until publishing fails."""
        reader = asyncio.create_task(self._read(websocket))
        refused: InvalidEvent | None = None
        try:
            while not reader.done() and self.failure is None:
                await self._wait(reader)
            if self.failure is None:
                refused = reader.result()
                # Frames read before the client left or erred are published all the same.
                while (self.queued or self.in_flight) and self.failure is None:
                    self.changed.clear()
                    await self.changed.wait()
            if self.failure is not None:
                await self._fail(websocket)
            elif refused is not None:
                await _close(websocket, POLICY_VIOLATION, f"invalid event: {refused}")
        finally:
            reader.cancel()
            for _, _, task in self.in_flight:
                task.cancel()

    async def _wait(self, reader: asyncio.Task[InvalidEvent | None]) -> None:
        self.changed.clear()
        changed = asyncio.ensure_future(self.changed.wait())
        try:
            await asyncio.wait({reader, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()

    async def _fail(self, websocket: WebSocket) -> None:
        failure = self.failure
        if isinstance(failure, BusUnavailable):
            EVENTS_REJECTED.labels("websocket", "bus_unavailable").inc()
            await _close(websocket, TRY_AGAIN_LATER, str(failure))
            return
        log.error("publishing a websocket's events failed", exc_info=failure)
        await _close(
            websocket, INTERNAL_ERROR, "the events could not be published; send them again"
        )

    async def _read(self, websocket: WebSocket) -> InvalidEvent | None:
        """Read, validate and queue frames until the client leaves (None) or sends one
        that is not valid (the error; nothing after it is published)."""
        while True:
            while self.queued_events + self.in_flight_events >= MAX_UNPUBLISHED:
                self.changed.clear()
                await self.changed.wait()  # stop reading: the client waits on TCP
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            self.received += 1
            data = message.get("bytes") or message.get("text", "").encode()
            try:
                events = receive_events_json(data)
                encoded = encode(events)
            except InvalidEvent as exc:
                reason = "too_large" if isinstance(exc, EventTooLarge) else "invalid"
                EVENTS_REJECTED.labels("websocket", reason).inc()
                return exc
            self.queued.append((self.received, encoded))
            self.queued_events += len(encoded)
            if not self.starting:
                # After the frames already parsed are read: they go out as one batch.
                self.starting = True
                asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self.starting = False
        while self.queued and len(self.in_flight) < MAX_IN_FLIGHT and self.failure is None:
            batch: list[EventMessage] = []
            to = 0
            while self.queued and len(batch) < MAX_BATCH:
                to, events = self.queued.popleft()
                batch.extend(events)
            self.queued_events -= len(batch)
            self.in_flight_events += len(batch)
            task = asyncio.create_task(self.bus.publish_events(batch))
            self.in_flight.append((to, len(batch), task))
            task.add_done_callback(self._published)

    def _published(self, _: asyncio.Task[None]) -> None:
        while self.in_flight and self.in_flight[0][2].done() and self.failure is None:
            to, count, task = self.in_flight.popleft()
            self.in_flight_events -= count
            if task.cancelled():
                self.failure = asyncio.CancelledError()
            elif (error := task.exception()) is not None:
                self.failure = error
            else:
                EVENTS_ACCEPTED.labels("websocket").inc(count)
                if self.held is not None:
                    self.held.handled(to)
        self._start()
        self.changed.set()


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
