"""The engine: embedded NATS, the bus, the database and the roles running in this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncEngine

from actions.connections import ConnectionDefinition
from events import clock
from events.bus import Bus, Names, StreamSettings
from events.consumer import BatchConsumer, store_consumer
from events.embedded import EmbeddedNats
from events.store import EventStore
from sla.timers import DueTimer
from triggers.automation import Automation
from triggers.decisions import trim_decisions
from triggers.evaluator import Evaluator, Subjects
from triggers.pipeline import Pipeline
from triggers.repository import AutomationStore
from tripwire.acting import Acting
from tripwire.database import create_engine, migrate
from tripwire.settings import Settings

log = logging.getLogger("tripwire.engine")


class Role(StrEnum):
    """What a process does; `tripwire up` runs them all."""

    api = "api"
    worker = "worker"


class Engine:
    """Starts and stops everything one process needs, in order."""

    def __init__(
        self,
        settings: Settings,
        roles: frozenset[Role] = frozenset(Role),
        *,
        automations: list[Automation] | None = None,
        connections: list[ConnectionDefinition] | None = None,
    ) -> None:
        # Everything is built here but nothing connects until `start`.
        self.settings = s = settings
        self.roles = roles
        self.embedded = None if s.nats_url else EmbeddedNats(s.nats_store_dir, s.nats_port)
        self.nats_url = s.nats_url or self.embedded.url  # type: ignore[union-attr]
        self.db: AsyncEngine = create_engine(s.resolved_database_url)
        self.store = EventStore(self.db)
        self.bus = Bus(
            self.nats_url,
            Names(s.namespace),
            StreamSettings(
                replicas=s.stream_replicas,
                events_max_age=s.stream_max_age,
                actions_max_age=s.stream_max_age,
                max_bytes=s.stream_max_bytes,
                duplicate_window=s.duplicate_window,
            ),
        )
        self.automations = AutomationStore(self.db)
        self.initial_automations = automations  # applied at start-up (`up --automations`)
        self.initial_connections = connections
        names = self.bus.names
        self.evaluator = Evaluator(
            Subjects(names.events_subject, names.actions_subject),
            max_depth=s.max_cascade_depth,
            decisions_per_batch=s.decisions_per_batch,
        )
        self.pipeline = Pipeline(self.db, self.store, self.bus, self.automations, self.evaluator)
        self.timer = DueTimer(self._due)
        self.pipeline.on_due = self.timer.wake_at
        self.consumers: list[BatchConsumer] = []
        ledger_url = s.ledger_database_url
        same = ledger_url == s.resolved_database_url
        self.ledger_db: AsyncEngine = self.db if same else create_engine(ledger_url)
        self.acting = Acting(s, self.db, self.ledger_db, self.bus, self.automations)
        if Role.worker in roles:
            self.consumers.append(self.acting.consumer)
            self.consumers.append(
                store_consumer(self.bus, self.pipeline.handle, batch_size=s.store_batch_size)
            )
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    async def start(self) -> None:
        """Embedded NATS (when no URL is set), migrations, streams, consumers, sweeper."""
        if self._started:
            raise RuntimeError("this engine was started already; build a new Engine to start again")
        self._started = True
        self.settings.home.mkdir(parents=True, exist_ok=True)
        if self.embedded is not None:
            await self.embedded.astart()
        await migrate(self.db)
        if self.ledger_db is not self.db:
            await migrate(self.ledger_db)  # one history for both files; the ledger's is used
        if self.initial_connections:
            await self.acting.connections.apply(self.initial_connections)
        if self.initial_automations is not None:
            changes = await self.automations.apply(self.initial_automations)
            log.info("applied %d automations at start-up", len(changes))
        await self.bus.connect()
        if Role.worker in self.roles:
            await self.pipeline.reload(force=True)
        for consumer in self.consumers:
            await consumer.start()
        if Role.worker in self.roles:
            self.timer.start()
            self._tasks += [
                asyncio.create_task(self._sweep_forever(), name="retention-sweep"),
                asyncio.create_task(self._follow_automations(), name="automations"),
            ]
        log.info("engine started (roles: %s)", ", ".join(sorted(r.value for r in self.roles)))

    async def stop(self) -> None:
        """Stop in reverse order; safe to call twice."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.timer.stop()
        for consumer in self.consumers:
            await consumer.stop()
        await self.acting.aclose()
        await self.bus.close()
        await self.db.dispose()
        if self.ledger_db is not self.db:
            await self.ledger_db.dispose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)

    async def sweep_once(self) -> int:
        """Delete events older than the retention period; returns how many."""
        removed = await self.store.sweep(clock.now() - self.settings.event_retention)
        if removed:
            log.info(
                "retention: swept %d events older than %s", removed, self.settings.event_retention
            )
        return removed

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep_once()
                await trim_decisions(self.db, self.settings.decisions_per_automation)
                await self.acting.ledger.sweep(clock.now() - self.settings.event_retention)
            except Exception:
                log.exception("retention sweep failed; trying again at the next interval")
            await asyncio.sleep(self.settings.retention_sweep_every.total_seconds())

    async def _due(self, now: datetime) -> datetime | None:
        return (await self.pipeline.run_due(now)).next_due

    async def _follow_automations(self) -> None:
        """Reload changed automations within a poll; republish what a crash left unsent."""
        polls = 0
        while True:
            await asyncio.sleep(self.settings.automations_poll.total_seconds())
            polls += 1
            try:
                await self.pipeline.reload()
                if polls % 10 == 0:
                    await self.pipeline.relay()
            except Exception:
                log.exception("checking for changed automations failed; trying again")
