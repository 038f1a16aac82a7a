"""Following a Prefect server: its event stream, republished onto the bus unchanged.

Each event keeps Prefect's id, occurred, resource, related, payload and follows; tripwire
stamps `received` as for any ingest, and publishes with `Nats-Msg-Id` = event id.

Nothing is lost across a restart of either side: a (re)connection asks the server to
backfill from the newest event forwarded (or, after a restart of tripwire, the newest
stored) minus an overlap, and, once Prefect's event persister has caught up, pages its
REST API over the same span for what the websocket's backfill could not see (older than
its 15 minutes, or not yet written when it was read). Copies are dropped by id here (a
bounded set), by JetStream within its duplicate window and by the store's primary key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import httpx
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from events import clock
from events.bus import Bus
from events.errors import EventsError, InvalidEvent
from events.filters import EventFilter, EventNameFilter, EventOrder
from events.keys import EventMessage
from events.model import RESOURCE_ID, RESOURCE_NAME, Event
from events.parsing import encode
from events.prefect_stream import auth_headers, event_of, read_stored, subscribe
from events.sources import PrefectSource
from events.store import EventStore

log = logging.getLogger("tripwire.follower")

# Where to start when nothing was forwarded yet: the newest stored event matching these
# name prefixes ([] = any), or None.
ResumePoint = Callable[[list[str]], Awaitable[datetime | None]]

BATCH = 500
QUEUE_LIMIT = 50_000  # events read ahead of publishing; past this the session restarts


def newest_stored(store: EventStore) -> ResumePoint:
    """Resume after a restart from the newest stored event with the followed names
    (tripwire's own events aside)."""

    async def newest(prefixes: list[str]) -> datetime | None:
        names = EventNameFilter(prefix=prefixes or None, exclude_prefix=["tripwire."])
        page = await store.read(EventFilter(event=names, order=EventOrder.DESC), 1)
        return page.events[0].occurred if page.events else None

    return newest


class FollowerState(StrEnum):
    """Where a follower is: starting, connected, reconnecting (after a failure), stopped."""

    starting = "starting"
    connected = "connected"
    reconnecting = "reconnecting"
    stopped = "stopped"


@dataclass
class Timing:
    """Backoff between attempts, overlap on resume, and how long Prefect may take to
    persist an event (before the REST catch-up reads it)."""

    first_retry: float = 0.5
    max_retry: float = 30.0
    overlap: timedelta = timedelta(minutes=1)
    first_backfill: timedelta = timedelta(minutes=15)
    persist_delay: float = 10.0


@dataclass
class FollowerStatus:
    """What /api/health reports for one follower."""

    state: FollowerState = FollowerState.starting
    connected_since: datetime | None = None
    last_event: dict[str, str] | None = None
    forwarded: int = 0
    reconnects: int = 0
    last_error: str | None = None
    resumed_from: datetime | None = None
    newest_occurred: datetime | None = field(default=None, repr=False)

    def report(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "connected_since": self.connected_since.isoformat() if self.connected_since else None,
            "last_event": self.last_event,
            "forwarded": self.forwarded,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "resumed_from": self.resumed_from.isoformat() if self.resumed_from else None,
        }


class _Seen:
    """The ids forwarded lately, oldest dropped first."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._ids: OrderedDict[UUID, None] = OrderedDict()

    def __contains__(self, event_id: UUID) -> bool:
        return event_id in self._ids

    def add(self, event_id: UUID) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self.limit:
            self._ids.popitem(last=False)

    def discard(self, event_id: UUID) -> None:
        self._ids.pop(event_id, None)


class _Lost(EventsError):
    """The session cannot go on (a full read-ahead queue); reconnect and resume."""


class PrefectFollower:
    """Follows one Prefect server's events onto the bus until stopped; `start` it once
    the bus is connected."""

    def __init__(
        self,
        source: PrefectSource,
        bus: Bus,
        *,
        api_key: str | None = None,
        auth_string: str | None = None,
        resume_point: ResumePoint | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.source = source
        self.bus = bus
        self.token = api_key or auth_string
        self.headers = auth_headers(api_key, auth_string)
        self.resume_point = resume_point
        self.timing = timing or Timing()
        self.status = FollowerStatus()
        self._seen = _Seen()
        self._task: asyncio.Task[None] | None = None
        self._prefixes = source.server_prefixes()

    @property
    def resource_id(self) -> str:
        return f"tripwire.source.{self.source.name}"

    def report(self) -> dict[str, Any]:
        """The status with what is followed, for /api/health."""
        return {
            "name": self.source.name,
            "type": self.source.type,
            "api_url": self.source.api_url,
            "events": self.source.events,
            **self.status.report(),
        }

    async def start(self) -> None:
        """Start following in the background."""
        if self._task is not None:
            raise RuntimeError("this follower was started already")
        self._task = asyncio.create_task(self._run(), name=f"follow-{self.source.name}")

    async def stop(self) -> None:
        """Stop following; events read but not yet published are re-read on the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.status.state = FollowerState.stopped

    async def _run(self) -> None:
        delay = self.timing.first_retry
        async with httpx.AsyncClient(headers=self.headers, timeout=10) as http:
            while True:
                try:
                    await self._session(http)
                    reason = "the server closed the stream"
                except asyncio.CancelledError:
                    raise
                except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                except (EventsError, httpx.HTTPError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                except Exception as exc:  # a bug; keep following, but say so
                    log.exception("following %s failed", self.source.api_url)
                    reason = f"{type(exc).__name__}: {exc}"
                if self.status.state == FollowerState.connected:
                    delay = self.timing.first_retry  # it worked for a while: retry soon
                await self._disconnected(reason)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.timing.max_retry)

    async def _since(self) -> datetime:
        newest = self.status.newest_occurred
        if newest is None and self.resume_point is not None:
            newest = await self.resume_point(self._prefixes)
        if newest is None:
            return clock.now() - self.timing.first_backfill
        return newest - self.timing.overlap

    async def _session(self, http: httpx.AsyncClient) -> None:
        """One connection: subscribe, announce, forward until it breaks."""
        since = await self._since()
        socket = await subscribe(self.source.api_url, self.token, since, self._prefixes)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        reader = asyncio.create_task(self._read(socket, queue))
        catch_up = asyncio.create_task(self._catch_up(http, since, clock.now(), queue))
        try:
            status = self.status
            status.state = FollowerState.connected
            status.connected_since = clock.now()
            status.resumed_from = since
            log.info("following %s (events since %s)", self.source.api_url, since.isoformat())
            await self._announce("tripwire.source.connected", f"resuming from {since.isoformat()}")
            await self._forward(queue, reader, catch_up)
        finally:
            reader.cancel()
            catch_up.cancel()
            # Their outcome is known (or moot); a cancellation of this task still propagates.
            await asyncio.gather(reader, catch_up, return_exceptions=True)
            await socket.close()

    async def _read(self, socket: ClientConnection, queue: asyncio.Queue[dict[str, Any]]) -> None:
        # Read as fast as frames come: a Prefect server drops events for a slow subscriber.
        async for message in socket:
            event = event_of(message)
            if event is None:
                continue
            if queue.qsize() >= QUEUE_LIMIT:
                raise _Lost(f"{QUEUE_LIMIT} events waiting to be published; resuming instead")
            queue.put_nowait(event)

    async def _catch_up(
        self,
        http: httpx.AsyncClient,
        since: datetime,
        connected_at: datetime,
        queue: asyncio.Queue[dict[str, Any]],
    ) -> None:
        # What the websocket's backfill missed: older than its limit, or not persisted yet.
        await asyncio.sleep(self.timing.persist_delay)
        until = connected_at + self.timing.overlap
        async for event in read_stored(http, self.source.api_url, since, until, self._prefixes):
            queue.put_nowait(event)

    async def _forward(
        self,
        queue: asyncio.Queue[dict[str, Any]],
        reader: asyncio.Task[None],
        catch_up: asyncio.Task[None],
    ) -> None:
        background = {reader, catch_up}
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, *background}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
            if catch_up in done:
                background.discard(catch_up)
                catch_up.result()  # a failed catch-up may have missed events: resume
            if reader in done:
                await self._drain(queue, getter)
                reader.result()  # raises why the stream ended
                return
            if getter in done:
                await self._drain(queue, getter)

    async def _drain(self, queue: asyncio.Queue[dict[str, Any]], getter: Any) -> None:
        """Publish what is queued, in batches; `getter` may hold the first one."""
        raw = [getter.result()] if getter.done() and not getter.cancelled() else []
        while raw or not queue.empty():
            while len(raw) < BATCH and not queue.empty():
                raw.append(queue.get_nowait())
            await self._publish(raw)
            raw = []

    async def _publish(self, raw: list[dict[str, Any]]) -> None:
        received = clock.now()
        events: list[Event] = []
        encoded: list[EventMessage] = []
        for data in raw:
            try:
                event = Event.model_validate(data)
                if event.id in self._seen or not self.source.wants(event.event):
                    continue
                encoded += encode([event.receive(received)])
            except (ValidationError, InvalidEvent) as exc:  # Prefect's limits are ours
                log.warning("skipped an event from %s: %s", self.source.api_url, exc)
                continue
            self._seen.add(event.id)  # also skips copies within this batch
            events.append(event)
        if not events:
            return
        try:
            await self.bus.publish_events(encoded)
        except BaseException:
            for event in events:  # not forwarded: let the resume send them again
                self._seen.discard(event.id)
            raise
        status = self.status
        status.forwarded += len(events)
        # A producer's clock ahead of ours must not move the resume point past events.
        newest = min(max(e.occurred for e in events), received)
        if status.newest_occurred is None or newest > status.newest_occurred:
            status.newest_occurred = newest
        last = events[-1]
        status.last_event = {
            "id": str(last.id),
            "event": last.event,
            "occurred": last.occurred.isoformat(),
        }

    async def _disconnected(self, reason: str) -> None:
        status = self.status
        was_connected = status.state == FollowerState.connected
        first_failure = status.state == FollowerState.starting
        status.state = FollowerState.reconnecting
        status.connected_since = None
        status.last_error = reason
        status.reconnects += 1
        if was_connected or first_failure:
            log.warning("lost %s (%s); reconnecting", self.source.api_url, reason)
            await self._announce("tripwire.source.disconnected", reason)
        else:
            log.debug("still cannot reach %s (%s)", self.source.api_url, reason)

    async def _announce(self, name: str, reason: str) -> None:
        event = Event(
            event=name,
            resource={
                RESOURCE_ID: self.resource_id,
                RESOURCE_NAME: self.source.name,
                "tripwire.source.type": self.source.type,
            },
            payload={"api_url": self.source.api_url, "reason": reason},
        )
        try:
            await self.bus.publish_events(encode([event.receive()]))
        except EventsError as exc:  # the bus is down too: the log has to do
            log.warning("could not announce %s for %s: %s", name, self.source.name, exc)
