"""The engine: embedded NATS, the bus, the database and the roles running in this process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.book import AlertBook
from alerts.silencing import SilenceStore
from alerts.store import AlertStore
from events import clock
from events.bus import Bus, Names, StreamSettings
from events.consumer import store_consumer
from events.embedded import EmbeddedNats
from events.follower import PrefectFollower
from events.owners import PartitionOwner
from events.sources import PrefectSource
from events.store import EventStore
from events.webhooks import WebhookStore
from sla.evaluator import SLAEvaluator
from sla.leader import Leadership
from sla.lookback import store_lookback
from sla.store import SLAStore
from sla.timers import DueTimer
from triggers.decisions import trim_decisions
from triggers.evaluator import Evaluator, Subjects
from triggers.pipeline import Companion, Pipeline
from triggers.repository import AutomationStore
from tripwire.acting import Acting
from tripwire.database import checkpoint_forever, create_engine, migrate, sqlite_path
from tripwire.definitions import SECTIONS, Definitions
from tripwire.definitions import apply as apply_definitions
from tripwire.following import build_followers
from tripwire.settings import Settings

log = logging.getLogger("tripwire.engine")
STOP_GRACE = 30.0  # seconds a database pass under way may take to finish when stopping


def settle_heap() -> None:
    """Put what start-up (or a reload) built out of the garbage collector's sight.

    The loaded automations, their compiled screens and the libraries are a million or so
    long-lived objects; a full collection walked all of them and paused the process every
    few seconds under load, the worker's worst latency (docs/architecture.md has the
    figures). They live until the next reload, which collects once and settles again.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def build_pipeline(
    settings: Settings,
    db: AsyncEngine,
    store: EventStore,
    bus: Bus,
    automations: AutomationStore,
    slas: SLAStore,
) -> Pipeline:
    """The worker's batch handler: the automations' evaluator with the SLAs' and the
    alerts' beside it."""
    subjects = Subjects(bus.names.events_subject, bus.names.actions_subject)
    evaluator = Evaluator(
        subjects,
        max_depth=settings.max_cascade_depth,
        decisions_per_batch=settings.decisions_per_batch,
        decisions_per_second=settings.decisions_per_second,
    )
    sla_evaluator = SLAEvaluator(subjects, slas, store_lookback(store))
    alert_book = AlertBook(subjects, automations, slas, retention=settings.alert_retention)
    companions: list[Companion] = [sla_evaluator, alert_book]
    return Pipeline(db, store, bus, automations, evaluator, companions=companions)


class Consuming(Protocol):
    """A store or actions consumer, or the partitions' owner that runs several."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Role(StrEnum):
    """What a process does; `tripwire up` runs them all."""

    api = "api"
    worker = "worker"  # stores and evaluates events
    sla = "sla"
    actions = "actions"  # runs action requests (`serve worker` includes it by default)


class Engine:
    """Starts and stops everything one process needs, in order."""

    def __init__(
        self,
        settings: Settings,
        roles: frozenset[Role] = frozenset(Role),
        *,
        definitions: Definitions | None = None,
        sources: Sequence[PrefectSource] | None = None,
    ) -> None:
        # Everything is built here but nothing connects until `start`.
        self.settings = s = settings
        self.roles = roles
        self.embedded = None if s.nats_url else EmbeddedNats(s.nats_store_dir, s.nats_port)
        self.nats_url = s.nats_url or self.embedded.url  # type: ignore[union-attr]
        self.db: AsyncEngine = create_engine(s.resolved_database_url)
        self.store = EventStore(self.db, counted_for=settings.event_retention)
        self.bus = Bus(
            self.nats_url,
            Names(s.namespace),
            StreamSettings(
                replicas=s.stream_replicas,
                events_max_age=s.stream_max_age,
                actions_max_age=s.stream_max_age,
                max_bytes=s.stream_max_bytes,
                duplicate_window=s.duplicate_window,
                partitions=s.partitions,
            ),
        )
        self.automations = AutomationStore(self.db)
        self.definitions = definitions  # applied at start-up (`up --automations`)
        self.webhooks = WebhookStore(self.db)
        self.slas = SLAStore(self.db)
        self.alerts = AlertStore(self.db, self.bus.names.events_subject)
        self.silences = SilenceStore(self.db, self.bus.names.events_subject)
        self.pipeline = build_pipeline(
            s, self.db, self.store, self.bus, self.automations, self.slas
        )
        self.timer = DueTimer(self._due)
        self.leadership = Leadership(self.db, s.namespace)
        # A window opened here wakes the timer here, or in the sla process over NATS.
        self.pipeline.on_due = self.timer.wake_at if Role.sla in roles else self._tell_timer
        self.consumers: list[Consuming] = []
        ledger_url = s.ledger_database_url
        same = ledger_url == s.resolved_database_url
        self.ledger_db: AsyncEngine = self.db if same else create_engine(ledger_url)
        self.acting = Acting(s, self.db, self.ledger_db, self.bus, self.automations)
        if Role.actions in roles:
            self.consumers.append(self.acting.consumer)
        self.owner: PartitionOwner | None = None  # with partitions: which this worker stores
        if Role.worker in roles and s.partitions > 1:
            self.owner = PartitionOwner(
                self.bus, self.pipeline.handle, batch_size=s.store_batch_size
            )
            self.consumers.append(self.owner)
        elif Role.worker in roles:
            self.consumers.append(
                store_consumer(self.bus, self.pipeline.handle, batch_size=s.store_batch_size)
            )
        # Following is ingestion: the api role follows (two api processes both do; the
        # bus and the store drop the copies).
        # `sources` when the definitions were applied elsewhere (by `up`'s first process).
        if sources is None:
            sources = definitions.sources if definitions else []
        self.followers: list[PrefectFollower] = (
            build_followers(s, sources, self.bus, self.store) if Role.api in roles else []
        )
        self._tasks: list[asyncio.Task[None]] = []  # cancelled on stop
        self._loops: list[asyncio.Task[None]] = []  # database passes: told to stop, not cut
        self._stopping = asyncio.Event()
        self._notices: set[asyncio.Task[None]] = set()
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
        if Role.worker in self.roles:  # day partitions before the first event is stored
            await self.store.prepare(clock.now(), self.settings.event_retention)
        if self.ledger_db is not self.db:
            await migrate(self.ledger_db)  # one history for both files; the ledger's is used
        if self.definitions is not None:
            changes = await apply_definitions(self.db, self.definitions.by_section)
            nouns = {section.name: section.noun for section in SECTIONS}
            for name, applied in changes.items():
                if applied:
                    plural = "" if len(applied) == 1 else "s"
                    log.info("applied %d %s%s at start-up", len(applied), nouns[name], plural)
        await self.bus.connect()
        if self.roles & {Role.worker, Role.sla}:
            await self.pipeline.reload(force=True)
        for consumer in self.consumers:
            await consumer.start()
        for follower in self.followers:
            await follower.start()
        if Role.actions in self.roles:
            await self.bus.listen(self.bus.names.silences_subject, self.acting.silence_gate.forget)
        if Role.sla in self.roles:
            await self.bus.listen(self.bus.names.timers_subject, self._told)
            self.timer.start()
        for path in {p for p in map(sqlite_path, self._database_urls()) if p is not None}:
            self._tasks.append(asyncio.create_task(checkpoint_forever(path), name="checkpoint"))
        if Role.worker in self.roles:
            self._loops.append(asyncio.create_task(self._sweep_forever(), name="retention-sweep"))
        if self.roles & {Role.worker, Role.sla}:
            self._loops.append(asyncio.create_task(self._follow_automations(), name="automations"))
        settle_heap()
        log.info("engine started (roles: %s)", ", ".join(sorted(r.value for r in self.roles)))

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop in reverse order; safe to call twice. A database pass under way (a sweep,
        a reload) finishes first, up to `grace` seconds: one cancelled inside a statement
        leaves its connection to the garbage collector instead of the pool."""
        self._stopping.set()
        if self._loops:
            _, late = await asyncio.wait(self._loops, timeout=grace)
            for task in late:
                log.warning("%s did not finish within %gs of stopping; cancelled", task, grace)
                task.cancel()
        for task in self._tasks:
            task.cancel()
        for task in [*self._loops, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops.clear()
        self._tasks.clear()
        for follower in self.followers:
            await follower.stop()
        await self.timer.stop()
        await self.leadership.release()
        for consumer in self.consumers:
            await consumer.stop()
        await self.acting.aclose()
        await self.bus.close()
        await self.db.dispose()
        if self.ledger_db is not self.db:
            await self.ledger_db.dispose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)

    def _database_urls(self) -> list[str]:
        return [self.settings.resolved_database_url, self.settings.ledger_database_url]

    async def sweep_once(self) -> int:
        """Delete events older than the retention period, after making the days ahead's
        partitions (PostgreSQL); returns how many."""
        now = clock.now()
        await self.store.prepare(now, self.settings.event_retention)
        removed = await self.store.sweep(now - self.settings.event_retention)
        if removed:
            log.info(
                "retention: swept %d events older than %s", removed, self.settings.event_retention
            )
        return removed

    async def _running_after(self, seconds: float) -> bool:
        """Wait `seconds`, or less when the engine stops; whether it is still running."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    async def _sweep_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep_once()
                await trim_decisions(self.db, self.settings.decisions_per_automation)
                await self.acting.ledger.sweep(clock.now() - self.settings.event_retention)
            except Exception:
                log.exception("retention sweep failed; trying again at the next interval")
            await self._running_after(self.settings.retention_sweep_every.total_seconds())

    async def _due(self, now: datetime) -> datetime | None:
        if not await self.leadership.held():
            return None  # a standby: the next poll tries to take the lead
        return (await self.pipeline.run_due(now)).next_due

    async def silences_changed(self) -> None:
        """Tell every actions role (this one at once) to read the silences again."""
        self.acting.silence_gate.forget()
        await self.bus.notify(self.bus.names.silences_subject, b"")

    def _tell_timer(self, when: datetime) -> None:
        body = when.isoformat().encode()
        task = asyncio.create_task(self.bus.notify(self.bus.names.timers_subject, body))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    def _told(self, body: bytes) -> None:
        try:
            self.timer.wake_at(datetime.fromisoformat(body.decode()))
        except ValueError:
            log.warning("ignored a malformed timer notice: %r", body[:100])

    async def _follow_automations(self) -> None:
        """Reload changed automations within a poll; republish what a crash left unsent."""
        polls = 0
        while await self._running_after(self.settings.automations_poll.total_seconds()):
            polls += 1
            try:
                if await self.pipeline.reload():
                    settle_heap()
                await self.pipeline.drop_published()
                if polls % 10 == 0:
                    await self.pipeline.relay()
            except Exception:
                log.exception("checking for changed automations failed; trying again")
