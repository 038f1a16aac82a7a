"""Events as they arrive, for a live view (the `out` websocket, the dashboard's feed):
an ordered JetStream consumer starting just past what the store has committed, so that
a view showing stored events first and live ones after misses none in between."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import nats.js.errors
from nats.js.api import ConsumerConfig, DeliverPolicy

from events.bus import Bus

LIVE_QUEUE_LIMIT = 10_000  # a subscriber this far behind is dropped, not buffered forever
OVERFLOW = b""  # what `LiveEvents.next` answers once the subscriber fell that far behind


async def stored_up_to(bus: Bus) -> int | None:
    """The stream sequence up to which the store has committed every event (its consumer's
    ack floor); None before the store consumer exists.

    With partitions, the least floor of the partitions with events outstanding: a
    partition with none has stored all of its own. Conservative, so a view may show an
    event stored just then twice, never miss one."""
    floors: list[int] = []
    last: int | None = None
    for durable in bus.store_consumers:
        try:
            info = await bus.js.consumer_info(bus.names.events_stream, durable)
        except nats.js.errors.NotFoundError:
            continue
        last = max(last or 0, int(info.delivered.stream_seq))
        if info.num_pending or info.num_ack_pending or len(bus.store_consumers) == 1:
            floors.append(int(info.ack_floor.stream_seq))
    if floors:
        return min(floors)
    return last


async def _start(bus: Bus, after: int | None) -> dict[str, Any]:
    """Where live streaming starts: just past `after`, else past what the store has
    committed now."""
    if after is None:
        after = await stored_up_to(bus)
    if after is None:  # no store consumer yet: nothing stored, start new
        return {"config": ConsumerConfig(deliver_policy=DeliverPolicy.NEW)}
    start = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1)
    return {"config": start}


class LiveEvents:
    """A queue of encoded events fed by the subscription; see `live_events`."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def on_message(self, msg: Any) -> None:
        size = self.queue.qsize()
        if size < LIVE_QUEUE_LIMIT:
            self.queue.put_nowait(msg.data if size < LIVE_QUEUE_LIMIT - 1 else OVERFLOW)

    async def next(self) -> bytes | None:
        """The next event's JSON; OVERFLOW when the reader fell too far behind; None after
        `end`."""
        return await self.queue.get()

    def end(self) -> None:
        """Wake the reader with None (its client left)."""
        self.queue.put_nowait(None)


@contextlib.asynccontextmanager
async def live_events(bus: Bus, after: int | None = None) -> AsyncIterator[LiveEvents]:
    """Subscribed on entry (read stored events after entering, so nothing falls between
    the two), unsubscribed on exit. A view that read stored events earlier passes `after`,
    what `stored_up_to` said before it read them: events stored since come live."""
    live = LiveEvents()
    sub = await bus.js.subscribe(
        bus.names.events_wildcard,
        stream=bus.names.events_stream,
        cb=live.on_message,
        ordered_consumer=True,
        **await _start(bus, after),
    )
    try:
        yield live
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
