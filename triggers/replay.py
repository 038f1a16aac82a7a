"""Replay: run automations over recorded events in event time, with no side effects.

The events and the trigger state go into a throwaway SQLite database and through the
same `Evaluator` the workers run; proactive windows are closed at the event-time instant
they end, and metric triggers evaluated at every tick, exactly when a live timer would.
Firings are collected instead of published.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from actions.request import FiringState
from events.model import ReceivedEvent
from events.store import EventStore
from events.tables import metadata
from triggers import tables as _tables  # noqa: F401  (registers the trigger tables)
from triggers.automation import Automation
from triggers.evaluator import Evaluator, Subjects
from triggers.firing import Firing
from triggers.metrics import next_tick
from triggers.results import Outcome, Result

BATCH = 500


@dataclass(frozen=True)
class ReplayFiring:
    """What would have fired, when and why."""

    at: datetime
    automation: str
    state: str
    why: str
    labels: dict[str, str]
    event_id: str | None
    event: str | None
    actions: int

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "automation": self.automation,
            "state": self.state,
            "why": self.why,
            "labels": self.labels,
            "event_id": self.event_id,
            "event": self.event,
            "actions": self.actions,
        }


@dataclass
class ReplayReport:
    """Firings in the order they would have happened."""

    events: int = 0
    firings: list[ReplayFiring] = field(default_factory=list)
    stopped: int = 0  # firings the cascade guard would have stopped


def _record(report: ReplayReport, result: Result) -> None:
    for firing in result.firings:
        report.firings.append(_replayed(firing))
    report.stopped += sum(1 for d in result.decisions if d.outcome is Outcome.stopped)


def _replayed(firing: Firing) -> ReplayFiring:
    automation = firing.automation
    if firing.state is FiringState.triggered:
        actions = len(automation.actions) + len(automation.actions_on_trigger)
    else:
        actions = len(automation.actions_on_resolve)
    return ReplayFiring(
        at=firing.triggered,
        automation=automation.name,
        state=firing.state.value,
        why=firing.why,
        labels=firing.labels,
        event_id=str(firing.event.id) if firing.event else None,
        event=firing.event.event if firing.event else None,
        actions=actions,
    )


class _Replayer:
    def __init__(self, db: AsyncEngine, automations: list[Automation], max_depth: int) -> None:
        self.db = db
        self.store = EventStore(db)
        self.evaluator = Evaluator(Subjects("replay.events", "replay.actions"), max_depth=max_depth)
        self.evaluator.load(automations)
        self.report = ReplayReport()
        self.next_due: datetime | None = None
        self.pending: list[bytes] = []

    async def due_until(self, until: datetime) -> None:
        while self.next_due is not None and self.next_due <= until:
            at = self.next_due
            async with self.db.begin() as conn:
                result = await self.evaluator.evaluate_due(conn, at)
            _record(self.report, result)
            # Windows are at least 10s long, so the next end is later, unless more were
            # due at `at` than one pass takes: then run `at` again.
            upcoming = result.next_due
            if upcoming is not None and upcoming <= at:
                upcoming = at if result.firings else None
            self.next_due = upcoming

    async def flush(self) -> None:
        if not self.pending:
            return
        async with self.db.begin() as conn:
            documents = await self.store.insert(conn, self.pending)
            result = await self.evaluator.evaluate(conn, documents)
        self.pending = []
        _record(self.report, result)
        if result.next_due is not None:
            self.next_due = min(filter(None, (self.next_due, result.next_due)))

    async def add(self, event: ReceivedEvent) -> None:
        self.report.events += 1
        if self.next_due is not None and self.next_due <= event.occurred:
            await self.flush()
            await self.due_until(event.occurred)
        self.pending.append(event.model_dump_json().encode())
        # An event that may open a proactive window goes alone, so the window's end is
        # known before later events are evaluated.
        proactive = any(not w.reactive for w in self.evaluator.index.watches(event.event))
        if proactive or len(self.pending) >= BATCH:
            await self.flush()


async def replay(
    automations: list[Automation],
    events: Iterable[ReceivedEvent],
    *,
    start: datetime | None = None,
    until: datetime | None = None,
    max_depth: int = 5,
) -> ReplayReport:
    """What the automations would have done on these events (sorted by `occurred`).

    `start` is when the automations were applied (default: the first event), `until`
    when the replay stops (default: the last event, or with metric triggers the tick after
    it); proactive windows ending and metric ticks by then are evaluated.
    """
    ordered = sorted(events, key=lambda e: (e.occurred, str(e.id)))
    with tempfile.TemporaryDirectory(prefix="tripwire-replay-") as folder:
        db = create_async_engine(f"sqlite+aiosqlite:///{Path(folder) / 'replay.db'}")
        try:
            async with db.begin() as conn:
                await conn.run_sync(metadata.create_all)
            replayer = _Replayer(db, automations, max_depth)
            begin = start or (ordered[0].occurred if ordered else None)
            if begin is not None:
                replayer.next_due = begin  # opens windows of proactive triggers
            for event in ordered:
                await replayer.add(event)
            await replayer.flush()
            end = until or (ordered[-1].occurred if ordered else begin)
            if until is None and end is not None and replayer.evaluator.metric_watches:
                end = next_tick(end)  # a run that ended last counts from the next tick
            if end is not None:
                await replayer.due_until(end)
            return replayer.report
        finally:
            await db.dispose()
