"""Durable JetStream pull consumers: batches in, handled, acked after the handler returns.

A raw pull loop rather than FastStream's batch subscriber or nats-py's `fetch`:
FastStream fills a batch with ever shorter fetches, and a fetch that expires on the client
first leaves a pull request on the server that captures the next message until ack_wait;
nats-py's `fetch` awaits each message separately (a `wait_for` per message), which cost
more than writing the event to SQLite. Here one pull request asks for a whole batch, a
subscription callback collects the messages into a buffer, and the next batch is pulled
while the current one is handled. Messages that arrive late (for an earlier long poll)
land in the buffer and go out with the next batch; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats.js.errors
import orjson
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events.bus import Bus

log = logging.getLogger("tripwire.consumer")

BatchHandler = Callable[[Sequence[bytes]], Awaitable[None]]
MOST_PARTITIONS = 256  # TRIPWIRE_PARTITIONS' upper bound
STATUS = "Status"


class BatchConsumer:
    """Pulls batches from a durable consumer and acks them after `handle` returns.

    Any number of processes may run the same durable: JetStream hands each message to
    one of them. When `handle` raises, the batch is nak'ed with a delay and comes back.
    """

    def __init__(
        self,
        bus: Bus,
        stream: str,
        subject: str | Sequence[str],
        durable: str,
        handle: BatchHandler,
        *,
        batch_size: int = 500,
        long_poll: float = 1.0,
        ack_wait: float = 30.0,
        redeliver_after: float = 1.0,
        max_ack_pending: int | None = None,
        starts_after: Callable[[], Awaitable[int | None]] | None = None,
    ) -> None:
        self.bus = bus
        self.starts_after = starts_after  # a new durable's first stream sequence - 1
        self.stream = stream
        self.subject = subject
        self.durable = durable
        self.handle = handle
        self.batch_size = batch_size
        self.long_poll = long_poll
        self.ack_wait = ack_wait
        self.redeliver_after = redeliver_after
        self.max_ack_pending = max_ack_pending or 20 * batch_size
        self._buffer: list[Msg] = []
        self._arrived = asyncio.Event()  # a message or a status reached the inbox
        self._ended = asyncio.Event()  # the server ended a pull request (404/408/409)
        self._inbox = ""
        self._subscription: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Create or update the durable consumer and start pulling."""
        subjects = [self.subject] if isinstance(self.subject, str) else list(self.subject)
        await self.bus.js.add_consumer(
            self.stream,
            ConsumerConfig(
                durable_name=self.durable,
                filter_subject=subjects[0] if len(subjects) == 1 else None,
                filter_subjects=subjects if len(subjects) > 1 else None,
                ack_policy=AckPolicy.EXPLICIT,
                **await self._start_at(),
                ack_wait=self.ack_wait,
                max_ack_pending=self.max_ack_pending,
                max_waiting=512,
            ),
        )
        connection = self.bus.broker.connection
        self._inbox = connection.new_inbox()
        self._subscription = await connection.subscribe(self._inbox, cb=self._on_message)
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"consume-{self.durable}")

    async def _start_at(self) -> dict[str, Any]:
        """Where the consumer starts: where it stands when it exists (a start cannot be
        changed), else at `starts_after` + 1 when given, else at the stream's start."""
        with contextlib.suppress(nats.js.errors.NotFoundError):
            kept = (await self.bus.js.consumer_info(self.stream, self.durable)).config
            return {"deliver_policy": kept.deliver_policy, "opt_start_seq": kept.opt_start_seq}
        after = await self.starts_after() if self.starts_after is not None else None
        if after is None:
            return {"deliver_policy": DeliverPolicy.ALL}
        return {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": after + 1}

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand, give back what was pulled but not handled, stop."""
        if self._task is None:
            return
        self._stopping.set()
        self._arrived.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        with contextlib.suppress(Exception):
            await self._subscription.unsubscribe()
        await self._nak(self._buffer, delay=None)  # another worker may take them now
        self._buffer = []

    async def _on_message(self, msg: Msg) -> None:
        if msg.headers and STATUS in msg.headers:
            self._ended.set()
        else:
            self._buffer.append(msg)
        self._arrived.set()

    async def _request(self, **options: Any) -> None:
        api = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}"
        body = orjson.dumps({"batch": self.batch_size, **options})
        await self.bus.broker.connection.publish(api, body, reply=self._inbox)

    async def _wait(self, until: Callable[[], bool], timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not until() and not self._stopping.is_set():
                    self._arrived.clear()
                    await self._arrived.wait()

    async def _pull(self) -> list[Msg]:
        """Up to one batch: what is waiting now, or else the first to arrive."""
        if len(self._buffer) < self.batch_size:
            self._ended.clear()
            await self._request(no_wait=True)
            await self._wait(
                lambda: len(self._buffer) >= self.batch_size or self._ended.is_set(), self.long_poll
            )
        if not self._buffer and not self._stopping.is_set():
            self._ended.clear()
            await self._request(expires=int(self.long_poll * 1e9))
            await self._wait(lambda: bool(self._buffer) or self._ended.is_set(), self.long_poll + 1)
        batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
        return batch

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = await self._pull()
            except Exception as exc:  # NATS down or reconnecting: wait and try again
                log.warning("pulling from %s failed (%s); retrying", self.stream, exc)
                await asyncio.sleep(self.redeliver_after)
                continue
            if messages:
                await self._process(messages)

    async def _process(self, messages: list[Msg]) -> None:
        # Pull the next batch while this one is handled (the database works in a thread).
        prefetch = asyncio.create_task(self._prefetch())
        try:
            await self.handle([m.data for m in messages])
        except Exception:
            log.exception(
                "handling a batch of %d from %s failed; it will be redelivered",
                len(messages),
                self.stream,
            )
            await self._nak(messages, delay=self.redeliver_after)
            return
        finally:
            await prefetch
        for message in messages:
            # A lost ack only means a redelivery, which handlers dedupe.
            with contextlib.suppress(Exception):
                await message.ack()

    async def _prefetch(self) -> None:
        if len(self._buffer) < self.batch_size and not self._stopping.is_set():
            with contextlib.suppress(Exception):
                await self._request(no_wait=True)

    async def _nak(self, messages: list[Msg], delay: float | None) -> None:
        for message in messages:
            with contextlib.suppress(Exception):
                await message.nak(delay=delay)


MessageHandler = Callable[[Msg], Awaitable[None]]


class MessageConsumer(BatchConsumer):
    """Hands each message to its own task, up to `concurrency` at once, so one slow
    message never holds up the others. The handler acks, naks or terms its message;
    one that raises is nak'ed for redelivery.

    A batch is pulled only once the previous one has all found a slot, so at most one
    batch waits for slots. JetStream's max_ack_pending is kept well above the concurrency:
    a message nak'ed with a delay (a retry in backoff) still counts as pending, and must
    not hold back new ones.
    """

    def __init__(
        self,
        bus: Bus,
        stream: str,
        subject: str,
        durable: str,
        handle: MessageHandler,
        *,
        concurrency: int = 64,
        ack_wait: float = 60.0,
        long_poll: float = 1.0,
    ) -> None:
        super().__init__(
            bus,
            stream,
            subject,
            durable,
            self._unused,
            batch_size=concurrency,
            long_poll=long_poll,
            ack_wait=ack_wait,
            max_ack_pending=max(1_000, 20 * concurrency),
        )
        self.handle_one = handle
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()

    @staticmethod
    async def _unused(_: Sequence[bytes]) -> None:
        raise AssertionError("MessageConsumer hands out single messages")

    async def _process(self, messages: list[Msg]) -> None:
        for message in messages:
            await self._slots.acquire()
            task = asyncio.create_task(self._one(message))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _one(self, message: Msg) -> None:
        try:
            await self.handle_one(message)
        except Exception:
            log.exception("handling a message from %s failed; it will be redelivered", self.stream)
            await self._nak([message], delay=self.redeliver_after)
        finally:
            self._slots.release()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop pulling, then let running handlers finish: by default for up to ack_wait,
        since a handler cut short is run again elsewhere (its side effects twice)."""
        timeout = self.ack_wait if timeout is None else timeout
        await super().stop(timeout)
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout)
        cut_short = set(self._running)
        for task in cut_short:
            task.cancel()
        if cut_short:
            log.warning("stopped %d handlers of %s still running", len(cut_short), self.stream)
            await asyncio.gather(*cut_short, return_exceptions=True)


def store_consumer(bus: Bus, write: BatchHandler, *, batch_size: int = 500) -> BatchConsumer:
    """The durable consumer that writes every event to the store (one partition)."""
    names = bus.names

    async def partitions_floor() -> int | None:
        """Where the store stood when it ran in partitions before: the least of their
        ack floors (the store drops the copies of what some had stored past it)."""
        floors = []
        for partition in range(MOST_PARTITIONS):
            durable = names.partition_consumer(partition)
            try:
                info = await bus.js.consumer_info(names.events_stream, durable)
            except nats.js.errors.NotFoundError:
                break
            floors.append(int(info.ack_floor.stream_seq))
        return min(floors) if floors else None

    return BatchConsumer(
        bus,
        names.events_stream,
        names.events_wildcard,
        names.store_consumer,
        write,
        batch_size=batch_size,
        starts_after=partitions_floor,
    )
