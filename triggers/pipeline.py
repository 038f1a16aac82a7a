"""The worker's batch handler: store the events and evaluate them in one transaction,
then publish what fired.

Redelivered events are already stored and so were already evaluated: only events this
transaction stored are evaluated, which makes evaluation exactly-once per event. The
messages a firing produces are written to the outbox in the same transaction and
published after the commit; if publishing fails they stay in the outbox and `relay`
sends them later (JetStream drops the copies by message id). Published messages leave
the outbox in the next batch's transaction (one commit fewer per batch that fired), or
at the engine's next poll when no batch comes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events import clock
from events.bus import Bus
from events.errors import BusUnavailable
from events.metrics import EVALUATION_BATCH_SIZE, EVALUATION_SECONDS, FIRINGS
from events.store import EventStore
from triggers import state
from triggers.evaluator import Evaluator
from triggers.firing import Message
from triggers.repository import AutomationStore
from triggers.results import Result
from triggers.tables import outbox

log = logging.getLogger("tripwire.triggers")

DueCallback = Callable[[datetime], None]


class Companion(Protocol):
    """Another evaluator that sees every stored batch and every timer pass, in the same
    transactions (the SLAs, which build on triggers and so cannot be imported here)."""

    async def reload(self) -> None:
        """Read the definitions again (the revision moved)."""

    async def evaluate(self, conn: AsyncConnection, documents: Sequence[dict[str, Any]]) -> Result:
        """Newly stored events."""

    async def evaluate_due(self, conn: AsyncConnection, now: datetime) -> Result:
        """What came due by `now`; `next_due` says when to come back."""


def _merge(into: Result, other: Result) -> None:
    into.messages += other.messages
    if other.next_due is not None and (into.next_due is None or other.next_due < into.next_due):
        into.next_due = other.next_due


class Pipeline:
    """Store, evaluate, publish; and the housekeeping that goes with it."""

    def __init__(
        self,
        db: AsyncEngine,
        store: EventStore,
        bus: Bus,
        automations: AutomationStore,
        evaluator: Evaluator,
        companions: Sequence[Companion] = (),
    ) -> None:
        self.db = db
        self.companions = list(companions)
        self.store = store
        self.bus = bus
        self.automations = automations
        self.evaluator = evaluator
        self.revision = -1
        self.on_due: DueCallback | None = None  # told when a proactive window opens
        self._reload_lock = asyncio.Lock()
        self._due_lock = asyncio.Lock()
        self._published: list[str] = []  # outbox ids to delete in the next transaction

    async def reload(self, *, force: bool = False) -> bool:
        """Load the automations again when they changed; True when they did."""
        async with self._reload_lock:
            revision = await self.automations.revision()
            if revision == self.revision and not force:
                return False
            stored = await self.automations.all()
            self.evaluator.load([s.automation for s in stored])
            for companion in self.companions:
                await companion.reload()
            self.revision = revision
            log.info("loaded %d automations (revision %d)", len(stored), revision)
            return True

    async def handle(self, bodies: Sequence[bytes], lane: int = 0) -> None:
        """The store consumer's handler; batches handled side by side pass different
        `lane`s (events/owners.py)."""
        started = time.perf_counter()
        async with self._transaction() as conn:
            documents = await self.store.insert(conn, bodies, lane)
            result = await self.evaluator.evaluate(conn, documents)
            for companion in self.companions:
                _merge(result, await companion.evaluate(conn, documents))
        EVALUATION_SECONDS.labels("events").observe(time.perf_counter() - started)
        EVALUATION_BATCH_SIZE.observe(len(bodies))
        await self.deliver(result)

    async def run_due(self, now: datetime | None = None) -> Result:
        """Evaluate proactive windows that ended by `now` (default: the clock)."""
        async with self._due_lock:
            started = time.perf_counter()
            async with self._transaction() as conn:
                now = now or clock.now()
                result = await self.evaluator.evaluate_due(conn, now)
                for companion in self.companions:
                    _merge(result, await companion.evaluate_due(conn, now))
            EVALUATION_SECONDS.labels("due").observe(time.perf_counter() - started)
        await self.deliver(result)
        return result

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that first drops what was published (each takes its own share,
        so transactions side by side never delete the same rows)."""
        published, self._published = self._published, []
        try:
            async with self.db.begin() as conn:
                await state.clear_outbox(conn, published)
                yield conn
        except BaseException:
            self._published[:0] = published  # rolled back: still to delete
            raise

    async def deliver(self, result: Result) -> None:
        """After a commit: count the firings, publish the messages, wake the timer."""
        for firing in result.firings:  # committed: count them once, however publishing goes
            FIRINGS.labels(firing.automation.name, firing.state.value).inc()
        if result.messages:
            await self.publish(result.messages)
        if self.on_due is not None and result.next_due is not None:
            self.on_due(result.next_due)

    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish outbox messages; the next transaction drops them from the outbox."""
        by_subject: dict[str, list[tuple[str, bytes]]] = {}
        for message in messages:
            by_subject.setdefault(message.subject, []).append((str(message.id), message.body))
        try:  # the subjects side by side: an action request need not wait for the events' acks
            await asyncio.gather(*(self.bus.publish(s, b) for s, b in by_subject.items()))
        except BusUnavailable as exc:
            log.warning(
                "publishing %d firing messages failed (%s); the relay retries", len(messages), exc
            )
            return
        self._published += [str(m.id) for m in messages]

    async def drop_published(self) -> None:
        """Delete published messages from the outbox now, rather than with the next batch
        (the engine calls this when it polls for changed automations)."""
        if self._published:
            async with self._transaction():
                pass

    async def relay(self, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Publish outbox messages left by a crash or an outage; returns how many. Only
        rows older than `older_than`, so as not to race a batch still publishing its own
        (a copy would be dropped by JetStream, but core subscribers would see it twice)."""
        cutoff = clock.now() - older_than
        await self.drop_published()  # sent already: not to be sent again
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(outbox)
                    .where(outbox.c.created <= cutoff)
                    .order_by(outbox.c.created)
                    .limit(1000)
                )
            ).all()
        if not rows:
            return 0
        await self.publish([Message(UUID(r.id), r.subject, r.body.encode()) for r in rows])
        return len(rows)
