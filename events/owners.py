"""Which worker stores which partition of the events stream.

With `TRIPWIRE_PARTITIONS` above 1 the events stream maps each event's key (its resource
id) to a partition, and each partition has a durable store consumer of its own
(events/bus.py). Every worker writes itself into a JetStream key-value bucket of members
every few seconds; an entry that is not renewed expires. Each worker reads the members
every second and takes the partitions that fall to it when the partitions are dealt out
in turn over the members sorted by name. Every worker computes the same deal from the
same members, so there is nobody to ask: a worker that joins takes its share at the next
read, and a worker that stops (or dies, once its entry expires) leaves its partitions to
the others.

Two workers may both pull a partition for a moment while their views of the members
differ, or while a dead worker's last batch waits out its ack_wait. That costs nothing in
correctness: a batch is stored and evaluated in one transaction under the windows' locks
and a stored event is never evaluated twice (triggers/state.py). What the partitions buy
is that, in the steady state, a resource's events reach one worker in order, and the
windows kept per resource are only locked by that worker; windows that several
resources share (per flow, per deployment, unkeyed) are still locked in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence

import nats.js.errors
from nats.js.api import KeyValueConfig

from events.bus import Bus
from events.consumer import BatchConsumer, BatchHandler

log = logging.getLogger("tripwire.owners")

MEMBER_TTL = 6.0  # seconds without renewal after which a worker counts as gone
RENEW_EVERY = 2.0
READ_EVERY = 1.0
# Batches of a worker's partitions stored at once. Each waits on the database much of
# its time; a second lane fills it (one worker, 8 partitions: 1,221 events/s in one lane,
# 1,928 in two, 1,723 in four, where batches of different partitions wait on the windows
# they share). A lane has its own rows of the per-minute counts (events/store.py).
LANES = 2

LaneHandler = Callable[[Sequence[bytes], int], Awaitable[None]]  # (batch, lane)


def member_name() -> str:
    """This worker's name among the members: host, pid and a random part (a pid can be
    reused by a restarted worker before the old entry expired)."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def deal(partitions: int, members: Sequence[str]) -> dict[str, list[int]]:
    """Partitions dealt in turn over the members sorted by name: every member gets the
    same number, give or take one."""
    ordered = sorted(members)
    dealt: dict[str, list[int]] = {member: [] for member in ordered}
    for partition in range(partitions):
        dealt[ordered[partition % len(ordered)]].append(partition)
    return dealt


class PartitionOwner:
    """Keeps this worker's entry among the members and a store consumer running for
    each partition dealt to it. Started and stopped like a consumer."""

    def __init__(
        self,
        bus: Bus,
        handle: LaneHandler,
        *,
        lanes: int = LANES,
        batch_size: int = 500,
        name: str | None = None,
        member_ttl: float = MEMBER_TTL,
        renew_every: float = RENEW_EVERY,
        read_every: float = READ_EVERY,
    ) -> None:
        self.bus = bus
        self.batch_size = batch_size
        self._lanes: asyncio.Queue[int] = asyncio.Queue()
        for lane in range(lanes):
            self._lanes.put_nowait(lane)

        async def in_a_lane(batch: Sequence[bytes]) -> None:
            lane = await self._lanes.get()
            try:
                await handle(batch, lane)
            finally:
                self._lanes.put_nowait(lane)

        self.handle: BatchHandler = in_a_lane
        self.name = name or member_name()
        self.member_ttl = member_ttl
        self.renew_every = renew_every
        self.read_every = read_every
        self.consumers: dict[int, BatchConsumer] = {}
        self._kv: nats.js.kv.KeyValue | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._changing = asyncio.Lock()

    @property
    def owned(self) -> list[int]:
        """The partitions this worker stores now."""
        return sorted(self.consumers)

    async def start(self) -> None:
        """Join the members and take this worker's share before returning."""
        names = self.bus.names
        self._kv = await self.bus.js.create_key_value(
            KeyValueConfig(
                bucket=f"{names.namespace.upper()}_WORKERS",
                description="tripwire workers alive; each entry expires unless renewed",
                ttl=self.member_ttl,
                replicas=self.bus.streams.replicas,
            )
        )
        await self._renew()
        await self.rebalance()
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="partition-owner")

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the batches in hand, give the partitions back and leave the members."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        async with self._changing:
            await self._release(list(self.consumers), timeout)
        if self._kv is not None:  # the others take over at their next read
            with contextlib.suppress(Exception):
                await self._kv.delete(self.name)

    async def members(self) -> list[str]:
        """The workers whose entries have not expired."""
        assert self._kv is not None, "start first"
        try:
            return list(await self._kv.keys())
        except nats.js.errors.NoKeysError:
            return []

    async def rebalance(self) -> None:
        """Start and stop consumers to match the deal over the members now."""
        members = await self.members()
        if self.name not in members:  # our entry lapsed (a long pause): write it again
            await self._renew()
            members.append(self.name)
        mine = deal(self.bus.streams.partitions, members)[self.name]
        async with self._changing:
            gone = [p for p in self.consumers if p not in mine]
            new = [p for p in mine if p not in self.consumers]
            if not gone and not new:
                return
            await self._release(gone)
            for partition in new:
                consumer = self._consumer(partition)
                await consumer.start()
                self.consumers[partition] = consumer
        log.info(
            "%s stores partitions %s of %d (%d workers)",
            self.name,
            self.owned,
            self.bus.streams.partitions,
            len(members),
        )

    def _consumer(self, partition: int) -> BatchConsumer:
        names = self.bus.names
        return BatchConsumer(
            self.bus,
            names.events_stream,
            names.partition_subjects(partition),
            names.partition_consumer(partition),
            self.handle,
            batch_size=self.batch_size,
            starts_after=self._whole_stream_floor,
        )

    async def _whole_stream_floor(self) -> int | None:
        """Where the store stood with one partition, when it ran that way before: a new
        partition consumer starts past what it stored (the store drops any copies)."""
        names = self.bus.names
        with contextlib.suppress(nats.js.errors.NotFoundError):
            info = await self.bus.js.consumer_info(names.events_stream, names.store_consumer)
            return int(info.ack_floor.stream_seq)
        return None

    async def _release(self, partitions: list[int], timeout: float = 10.0) -> None:
        for partition in partitions:
            consumer = self.consumers.pop(partition)
            await consumer.stop(timeout)

    async def _renew(self) -> None:
        assert self._kv is not None
        await self._kv.put(self.name, b"")

    async def _run(self) -> None:
        since_renewal = 0.0
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.read_every)
            if self._stopping.is_set():
                return
            since_renewal += self.read_every
            try:
                if since_renewal >= self.renew_every:
                    since_renewal = 0.0
                    await self._renew()
                await self.rebalance()
            except Exception as exc:  # NATS down or reconnecting: keep what we have
                log.warning("reading the workers failed (%s); trying again", exc)
