"""The store consumer: JetStream batches into the event store, acked after commit."""

from __future__ import annotations

import logging
from typing import Any

from faststream import AckPolicy, Context
from faststream.nats import JStream, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy

from events.bus import Bus
from events.store import EventStore

log = logging.getLogger("tripwire.store")


async def _raw_bodies(message: Any) -> Any:
    # Keep the bytes: the store parses them once, FastStream need not decode them first.
    return message.body


def subscribe_store(
    bus: Bus,
    store: EventStore,
    *,
    batch_size: int = 500,
    max_wait: float = 0.05,
    ack_wait: float = 30.0,
    redeliver_after: float = 1.0,
) -> None:
    """Register the durable pull consumer that writes every event to the store.

    Any number of processes may run it: they share one durable consumer, and the
    store skips ids it already holds, so a redelivered batch is stored once.
    """
    names = bus.names

    @bus.broker.subscriber(
        names.events_wildcard,
        stream=JStream(names.events_stream, declare=False),
        durable=names.store_consumer,
        pull_sub=PullSub(batch_size=batch_size, timeout=max_wait, batch=True),
        config=ConsumerConfig(
            durable_name=names.store_consumer,
            ack_policy=JsAckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait,
            max_ack_pending=20 * batch_size,
        ),
        decoder=_raw_bodies,
        ack_policy=AckPolicy.MANUAL,
        title="store-events",
    )
    async def store_events(bodies: list[bytes], message: NatsBatchMessage = Context()) -> None:
        try:
            await store.write(bodies)
        except Exception:
            log.exception("storing a batch of %d events failed; it will be redelivered", len(bodies))
            await message.nack(delay=redeliver_after)
            return
        await message.ack()
