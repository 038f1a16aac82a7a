"""Publishing a batch to JetStream and waiting for every acknowledgement, cheaply.

nats-py's `publish_async` makes a future, a random token and a semaphore round per
message and parses every ack into a dataclass; at thousands of events a second that was
a fifth of ingest. Here a batch shares one reply subject, and one subscription callback
counts its acks, failing the batch on the first error.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from nats.aio.msg import Msg

from events.errors import BusUnavailable

MSG_ID = "Nats-Msg-Id"
STATUS = "Status"


class _Batch:
    __slots__ = ("acked", "done", "error", "expected")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.acked = 0
        self.error: str | None = None
        self.done = asyncio.Event()


class BatchPublisher:
    """Publishes batches on one NATS connection; `start` it once connected."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._prefix = ""
        self._subscription: Any = None
        self._batches: dict[str, _Batch] = {}
        self._tokens = itertools.count()
        # One batch's messages are written whole before the next one's: a caller with
        # several batches in flight gets them on the stream in the order it gave them.
        self._writing = asyncio.Lock()

    async def start(self) -> None:
        """Subscribe to the acks' inbox."""
        self._prefix = self.connection.new_inbox() + "."
        self._subscription = await self.connection.subscribe(self._prefix + "*", cb=self._on_ack)

    async def publish(
        self, messages: Sequence[tuple[str, UUID | str, bytes]], timeout: float
    ) -> None:
        """Publish (subject, id, data) messages with `Nats-Msg-Id` headers; return once
        JetStream stored them all."""
        token = str(next(self._tokens))
        batch = _Batch(len(messages))
        self._batches[token] = batch
        reply = self._prefix + token
        publish = self.connection.publish
        try:
            async with self._writing:
                for subject, msg_id, data in messages:
                    await publish(subject, data, reply=reply, headers={MSG_ID: str(msg_id)})
            async with asyncio.timeout(timeout):
                await batch.done.wait()
        except TimeoutError as exc:
            raise BusUnavailable(
                f"the event bus acknowledged {batch.acked} of {batch.expected} events in "
                f"{timeout:g}s; nothing is lost: send them again"
            ) from exc
        finally:
            del self._batches[token]
        if batch.error is not None:
            raise BusUnavailable(
                f"the event bus refused the events ({batch.error}); nothing is lost: "
                "send them again"
            )

    async def _on_ack(self, msg: Msg) -> None:
        batch = self._batches.get(msg.subject[len(self._prefix) :])
        if batch is None:
            return  # an ack for a batch we already gave up on
        if msg.headers and STATUS in msg.headers:
            # 503 "no responders": no stream takes the subject, or (in a cluster) the
            # stream's leader is gone and a new one is not elected yet.
            batch.error = (
                f"status {msg.headers[STATUS]}: no stream answered; none takes these "
                "subjects, or its leader is being elected"
            )
        elif b'"error"' in msg.data:
            batch.error = msg.data.decode(errors="replace")[:200]
        batch.acked += 1
        if batch.error is not None or batch.acked >= batch.expected:
            batch.done.set()
