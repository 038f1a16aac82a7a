"""The bus: NATS JetStream, connected through FastStream's NatsBroker.

FastStream holds the connection (reconnects, cluster seeds, logging); the hot paths publish
and pull through nats-py's own client on that connection (events/publisher.py,
events/consumer.py), where the measured cost per message decided it.

Two streams per namespace: `<NS>_EVENTS` (subjects `<ns>.events.>`) and `<NS>_ACTIONS`
(`<ns>.actions.>`). Events are published with `Nats-Msg-Id` = event id, so a resent event
is stored once by JetStream's duplicate window (and once more by the store's primary key).

An event's subject carries its key, a digest of its resource id: `<ns>.events.in.<key>`.
With more than one partition the events stream maps it, as it stores the message, to
`<ns>.events.p.<n>.<key>`, n = partition(key) (a subject transform: nats-server does the
hashing), and each partition has a durable store consumer of its own (events/owners.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import nats.errors
import nats.js.errors
from faststream.nats import NatsBroker
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    SubjectTransform,
)

from events.errors import BusUnavailable
from events.keys import EventMessage, keyed
from events.metrics import BUS_PUBLISH_SECONDS
from events.publisher import BatchPublisher

log = logging.getLogger("tripwire.bus")


@dataclass(frozen=True)
class StreamSettings:
    """How the streams are declared: replicas, limits and the duplicate window."""

    replicas: int = 1
    events_max_age: timedelta = timedelta(days=7)
    actions_max_age: timedelta = timedelta(days=7)
    max_bytes: int = -1
    duplicate_window: timedelta = timedelta(minutes=10)
    partitions: int = 1  # of the events stream, by key; see events/owners.py


@dataclass(frozen=True)
class Names:
    """Stream, subject and consumer names derived from one namespace."""

    namespace: str = "tripwire"

    @property
    def events_stream(self) -> str:
        return f"{self.namespace.upper()}_EVENTS"

    @property
    def actions_stream(self) -> str:
        return f"{self.namespace.upper()}_ACTIONS"

    @property
    def events_subject(self) -> str:
        return f"{self.namespace}.events.in"

    def keyed_subject(self, key: str) -> str:
        """Where an event with this key is published."""
        return keyed(self.events_subject, key)

    def partition_subjects(self, partition: int) -> list[str]:
        """What partition `partition`'s consumer reads. Partition 0 also takes what the
        stream kept as it was sent: events stored while there was one partition, and any
        published without a key."""
        keyed = f"{self.namespace}.events.p.{partition}.*"
        if partition:
            return [keyed]
        return [keyed, self.events_subject, f"{self.events_subject}.*"]

    def partition_consumer(self, partition: int) -> str:
        return f"{self.store_consumer}-{partition}"

    @property
    def events_wildcard(self) -> str:
        return f"{self.namespace}.events.>"

    @property
    def actions_subject(self) -> str:
        return f"{self.namespace}.actions.requested"

    @property
    def actions_wildcard(self) -> str:
        return f"{self.namespace}.actions.>"

    @property
    def store_consumer(self) -> str:
        return f"{self.namespace}-store"

    @property
    def actions_consumer(self) -> str:
        return f"{self.namespace}-actions"

    @property
    def timers_subject(self) -> str:
        """Core NATS (not a stream): workers tell the timer process of new due instants."""
        return f"{self.namespace}.timers.due"

    @property
    def silences_subject(self) -> str:
        """Core NATS: the api tells the actions roles that silences changed."""
        return f"{self.namespace}.silences.changed"


class Bus:
    """Connection to NATS, stream declaration and publishing."""

    def __init__(
        self,
        url: str,
        names: Names | None = None,
        streams: StreamSettings | None = None,
        *,
        publish_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.names = names or Names()
        self.streams = streams or StreamSettings()
        self.publish_timeout = publish_timeout
        self.broker = NatsBroker(
            [server.strip() for server in url.split(",")],  # a cluster: several seed URLs
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=5,
            logger=logging.getLogger("tripwire.faststream"),
        )
        self._connected = False
        self._publisher: BatchPublisher | None = None
        self._js: Any = None

    @property
    def is_connected(self) -> bool:
        """True while the NATS connection is up."""
        if not self._connected:
            return False
        return bool(self.broker.connection.is_connected)

    async def connect(self) -> None:
        """Connect and declare the streams (idempotent)."""
        connection = await self.broker.connect()
        self._js = connection.jetstream()
        self._connected = True
        await self.declare_streams()
        self._publisher = BatchPublisher(self.broker.connection)
        await self._publisher.start()

    async def close(self) -> None:
        """Drain the connection; close it outright when NATS is not there to drain to."""
        if not self._connected:
            return
        self._connected = False
        try:
            await self.broker.stop()
        except Exception as exc:  # reconnecting or gone: nothing to drain to
            log.warning("NATS connection did not drain (%s); closing it", exc)
            with contextlib.suppress(Exception):
                await self.broker.connection.close()

    @property
    def js(self):  # type: ignore[no-untyped-def]  # nats-py ships no type for this context
        """The JetStream context; connect first."""
        if not self._connected:
            raise RuntimeError("connect the bus first (await bus.connect())")
        return self._js

    def _stream_config(
        self,
        name: str,
        subjects: str,
        max_age: timedelta,
        what: str,
        transform: SubjectTransform | None = None,
    ) -> StreamConfig:
        return StreamConfig(
            name=name,
            subjects=[subjects],
            description=what,
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.OLD,
            num_replicas=self.streams.replicas,
            max_age=max_age.total_seconds(),
            max_bytes=self.streams.max_bytes,
            duplicate_window=self.streams.duplicate_window.total_seconds(),
            subject_transform=transform,
        )

    def _partitioning(self) -> SubjectTransform | None:
        n, count = self.names, self.streams.partitions
        if count <= 1:
            return None
        return SubjectTransform(
            src=f"{n.events_subject}.*",
            dest=f"{n.namespace}.events.p.{{{{partition({count},1)}}}}.{{{{wildcard(1)}}}}",
        )

    @property
    def store_consumers(self) -> list[str]:
        """The durable consumers that together store every event."""
        count = self.streams.partitions
        if count <= 1:
            return [self.names.store_consumer]
        return [self.names.partition_consumer(p) for p in range(count)]

    def _stream_configs(self) -> list[StreamConfig]:
        n, s = self.names, self.streams
        return [
            self._stream_config(
                n.events_stream,
                n.events_wildcard,
                s.events_max_age,
                "tripwire events, deduplicated by Nats-Msg-Id = event id",
                self._partitioning(),
            ),
            self._stream_config(
                n.actions_stream,
                n.actions_wildcard,
                s.actions_max_age,
                "tripwire action requests, one per action of a firing",
            ),
        ]

    async def declare_streams(self) -> None:
        """Create the streams, or update them when the settings changed."""
        for config in self._stream_configs():
            try:
                await self.js.add_stream(config)
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != 10058:  # stream name in use with a different config
                    raise
                log.info("updating stream %s to the configured settings", config.name)
                await self.js.update_stream(config)

    async def publish(self, subject: str, messages: Sequence[tuple[UUID | str, bytes]]) -> None:
        """Publish to one subject and wait until JetStream acknowledged every message."""
        actions = subject.startswith(f"{self.names.namespace}.actions.")
        stream = "actions" if actions else "events"
        await self._publish([(subject, msg_id, data) for msg_id, data in messages], stream)

    async def publish_events(self, messages: Sequence[EventMessage]) -> None:
        """Publish encoded events onto the events stream, each under its key."""
        keyed = self.names.keyed_subject
        await self._publish([(keyed(m.key), m.id, m.data) for m in messages], "events")

    async def _publish(
        self, messages: Sequence[tuple[str, UUID | str, bytes]], stream: str
    ) -> None:
        """Publish and wait until JetStream acknowledged every message.

        Raises BusUnavailable when NATS is down or does not answer in time; messages that
        did get in are deduplicated by id when the caller sends them again.
        """
        if not self.is_connected:
            raise BusUnavailable(
                "the event bus (NATS) is not reachable; "
                "nothing was accepted: send them again shortly"
            )
        if self._publisher is None:
            raise RuntimeError("connect the bus first (await bus.connect())")
        started = time.perf_counter()
        try:
            await self._publisher.publish(messages, self.publish_timeout)
        except nats.errors.Error as exc:  # e.g. the outbound buffer filled while reconnecting
            raise BusUnavailable(
                f"the event bus did not take the events ({type(exc).__name__}); "
                "nothing is lost: send them again"
            ) from exc
        BUS_PUBLISH_SECONDS.labels(stream).observe(time.perf_counter() - started)

    async def notify(self, subject: str, body: bytes) -> None:
        """A best-effort core NATS message (no stream, no acknowledgement)."""
        if self.is_connected:
            with contextlib.suppress(nats.errors.Error):
                await self.broker.connection.publish(subject, body)

    async def listen(self, subject: str, handle: Callable[[bytes], None]) -> None:
        """Call `handle` with the body of every core NATS message on `subject`."""

        async def received(message: Any) -> None:
            handle(message.data)

        await self.broker.connection.subscribe(subject, cb=received)

    async def pending(self, stream: str, durable: str) -> int:
        """Messages a durable consumer has not yet acknowledged (its lag)."""
        info = await self.js.consumer_info(stream, durable)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def store_lag(self) -> int | None:
        """Events not yet stored, over every store consumer; None before any exists."""
        lags = []
        for durable in self.store_consumers:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                lags.append(await self.pending(self.names.events_stream, durable))
        return sum(lags) if lags else None
