"""The store consumer: JetStream batches into the event store, acked after commit.

A plain nats-py pull loop rather than FastStream's batch subscriber: FastStream fills a
batch with ever shorter fetches until a deadline, and a fetch that expires on the client
first leaves a pull request on the server that captures the next message, which then
waits a whole ack_wait for redelivery. nats-py's `fetch` returns as soon as messages are
there, so a long timeout costs no latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events.bus import Bus

log = logging.getLogger("tripwire.store")

BatchHandler = Callable[[Sequence[bytes]], Awaitable[None]]


class BatchConsumer:
    """Fetches batches from a durable pull consumer and acks them after `handle` returns.

    Any number of processes may run the same durable: JetStream hands each batch to one.
    When `handle` raises, the batch is nak'ed with a delay and comes back later.
    """

    def __init__(
        self,
        bus: Bus,
        stream: str,
        subject: str,
        durable: str,
        handle: BatchHandler,
        *,
        batch_size: int = 500,
        fetch_timeout: float = 1.0,
        ack_wait: float = 30.0,
        redeliver_after: float = 1.0,
    ) -> None:
        self.bus = bus
        self.stream = stream
        self.subject = subject
        self.durable = durable
        self.handle = handle
        self.batch_size = batch_size
        self.fetch_timeout = fetch_timeout
        self.ack_wait = ack_wait
        self.redeliver_after = redeliver_after
        self._task: asyncio.Task[None] | None = None
        self._subscription: nats.js.JetStreamContext.PullSubscription | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Create the durable consumer (idempotent) and start fetching."""
        self._stopping.clear()
        subscription = await self.bus.js.pull_subscribe(
            self.subject,
            durable=self.durable,
            stream=self.stream,
            config=ConsumerConfig(
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.ack_wait,
                max_ack_pending=20 * self.batch_size,
            ),
        )
        self._subscription = subscription
        self._task = asyncio.create_task(self._run(subscription), name=f"consume-{self.durable}")

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand, then stop."""
        if self._task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        # Unsubscribe before the connection drains: drain waits for our pending queue,
        # and nobody fetches from it any more; JetStream keeps what we did not ack.
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _run(self, subscription: nats.js.JetStreamContext.PullSubscription) -> None:
        while not self._stopping.is_set():
            try:
                messages = await subscription.fetch(self.batch_size, timeout=self.fetch_timeout)
            except nats.errors.TimeoutError:
                continue
            except Exception as exc:  # NATS down or reconnecting: wait and try again
                log.warning("fetching from %s failed (%s); retrying", self.stream, exc)
                await asyncio.sleep(self.redeliver_after)
                continue
            await self._process(messages)

    async def _process(self, messages: list[Msg]) -> None:
        try:
            await self.handle([m.data for m in messages])
        except Exception:
            log.exception(
                "handling a batch of %d from %s failed; it will be redelivered",
                len(messages),
                self.stream,
            )
            for message in messages:
                with contextlib.suppress(Exception):
                    await message.nak(delay=self.redeliver_after)
            return
        for message in messages:
            # A lost ack only means a redelivery, which the handler dedupes.
            with contextlib.suppress(Exception):
                await message.ack()


def store_consumer(bus: Bus, write: BatchHandler, *, batch_size: int = 500) -> BatchConsumer:
    """The durable consumer that writes every event to the store."""
    names = bus.names
    return BatchConsumer(
        bus,
        names.events_stream,
        names.events_wildcard,
        names.store_consumer,
        write,
        batch_size=batch_size,
    )
