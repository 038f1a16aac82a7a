"""Trigger evaluation with Prefect's semantics, state in the database.

`evaluate` takes a batch of newly stored events and, in the caller's transaction: finds
candidate triggers by event name, tests labels, related resources and `where`, updates
the windows (buckets) the events fall into and the flow runs metric triggers measure,
fires, records why each candidate did or did not fire, and queues the resulting messages
in the outbox. `evaluate_due` does the same for proactive windows whose time is up and
for metric triggers at each tick. Live evaluation, the timers and `tripwire test` all run
this code.

The parts: `triggers.budget` screens candidates and keeps the decision budget,
`triggers.windows` holds the window rules, `triggers.metering` the metric triggers'
passes, `triggers.propagation` hands firings of
compound and sequence children up, and a pass here fires, acts and writes it all back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from actions.request import FiringState
from events import clock
from events.model import ReceivedEvent
from events.tables import events
from triggers import metering, state
from triggers.automation import Automation
from triggers.budget import Candidate, Recorder, Sampling
from triggers.compiled import Screens
from triggers.firing import (
    Firing,
    Message,
    action_requests,
    event_message,
    firing_id,
    loop_event,
    state_event,
)
from triggers.identity import Composite, event_triggers, stamped, walk
from triggers.index import CandidateIndex, Watch
from triggers.matching import key_text
from triggers.metering import MetricWatch
from triggers.ordering import causal_order, overdue
from triggers.propagation import propagate
from triggers.results import Decision, Outcome, Result, instant_text, span_text
from triggers.state import Bucket
from triggers.windows import Windows

SWEEP_GRACE = timedelta(seconds=60)  # Prefect's expired-bucket buffer
DUE_BATCH = 500


@dataclass(frozen=True)
class Subjects:
    """Where firings publish: the events subject and the actions subject."""

    events: str
    actions: str


class Evaluator:
    """Holds the loaded automations and evaluates batches against them."""

    def __init__(
        self,
        subjects: Subjects,
        *,
        max_depth: int = 5,
        decisions_per_batch: int = 5,
        decisions_per_second: int | None = None,
    ) -> None:
        self.subjects = subjects
        self.max_depth = max_depth
        self.decisions_per_batch = decisions_per_batch
        self.sampling = Sampling(decisions_per_second)
        self.automations: dict[str, Automation] = {}
        self.watches: list[Watch] = []
        self.watch_by_id: dict[str, Watch] = {}
        self.metric_watches: list[MetricWatch] = []
        self.index = CandidateIndex(())
        self.screens = Screens()
        self._parents: dict[str, Composite | None] = {}

    def load(self, automations: Sequence[Automation]) -> None:
        """Replace the loaded automations (ids are filled in when missing)."""
        watches: list[Watch] = []
        metric_watches: list[MetricWatch] = []
        parents: dict[str, Composite | None] = {}
        loaded: dict[str, Automation] = {}
        screens = Screens()
        for automation in automations:
            automation = stamped(automation) if automation.id is None else automation
            loaded[str(automation.id)] = automation
            for placed in walk(automation.trigger):
                parents[str(placed.trigger.id)] = placed.parent
            for trigger, parent in event_triggers(automation):
                watches.append(Watch(automation, trigger, parent, screens.compile(trigger)))
            metric_watches += metering.watches_of(automation, screens)
        self.metric_watches = metric_watches
        self.automations, self.watches, self._parents = loaded, watches, parents
        self.watch_by_id = {w.id: w for w in watches}
        self.screens = screens
        self.index = CandidateIndex(watches)

    async def evaluate(self, conn: AsyncConnection, documents: Sequence[dict[str, Any]]) -> Result:
        """Evaluate newly stored events (as JSON documents) in the caller's transaction,
        in causal order (see `triggers.ordering`)."""
        documents = await causal_order(conn, documents, clock.now())
        return await self._evaluate(conn, documents)

    async def _evaluate(self, conn: AsyncConnection, documents: Sequence[dict[str, Any]]) -> Result:
        run = _Pass(self, conn)
        work: list[Candidate] = []
        for document in documents:
            work += run.recorder.screen_event(self.index, self.screens, document)
        feeding = metering.fed(self.metric_watches, self.screens, documents)
        idents = list(dict.fromkeys((w.id, key) for _, w, key, _ in work))
        if idents or feeding:
            # One sorted set of locks for windows and runs: taken in two steps, two
            # workers could each hold what the other waits for.
            locks = [state.bucket_lock(i) for i in idents] + metering.run_locks(feeding)
            await state.lock(conn, locks)
        await metering.feed(conn, feeding)
        if work:
            run.windows.loaded(await state.load_buckets(conn, idents))
            for event, watch, key, roles in work:
                await run.windows.on_event(watch, key, event, roles)
        await run.finish()
        return run.result

    async def evaluate_due(self, conn: AsyncConnection, now: datetime) -> Result:
        """Proactive windows that ended by `now`, and events that waited too long for the
        event they follow; sets `next_due` to the next window's end."""
        late = await overdue(conn, clock.now())
        followers = await self._evaluate(conn, late) if late else Result()
        run = _Pass(self, conn)
        proactive = [w for w in self.watches if not w.reactive and w.automation.enabled]
        fresh = [
            Bucket(
                trigger_id=w.id,
                key=key_text(()),
                automation_id=w.automation_id,
                start=now,
                end=now + w.trigger.within,
                count=0,
                last_event=None,
                triggered=None,
                proactive=True,
            )
            for w in proactive
            if not w.trigger.for_each and not w.trigger.after
        ]
        await state.ensure_buckets(conn, fresh)
        ids = [w.id for w in proactive]
        due = await state.due_buckets(conn, ids, now, DUE_BATCH)
        if due:
            await state.lock(conn, [state.bucket_lock(b.ident) for b in due])
            current = await state.load_buckets(conn, [b.ident for b in due])
            run.windows.loaded(current)
            for bucket in current.values():
                watch = self.watch_by_id.get(bucket.trigger_id)
                if watch is not None and bucket.end <= now:  # still due under the lock
                    await run.windows.evaluate_bucket(watch, bucket, now, None)
        await state.sweep_buckets(conn, now - SWEEP_GRACE)
        for evaluated in await metering.evaluate(conn, self.metric_watches, now):
            await run.metric(evaluated)
        await run.finish()
        run.result.next_due = min(
            filter(
                None, (await state.next_due(conn, ids), metering.next_due(self.metric_watches, now))
            ),
            default=None,
        )
        for part in ("firings", "messages", "decisions"):
            getattr(run.result, part)[:0] = getattr(followers, part)
        return run.result


class _Pass:
    """One transaction's worth of evaluation: the windows it changes, the decisions it
    records, and what fires (see `triggers.windows.Reporter`)."""

    def __init__(self, evaluator: Evaluator, conn: AsyncConnection) -> None:
        self.ev = evaluator
        self.conn = conn
        self.result = Result()
        self.recorder = Recorder(
            evaluator.decisions_per_batch, self.result.decisions, evaluator.sampling
        )
        self.windows = Windows(self)

    async def stored_event(self, event_id: str) -> ReceivedEvent | None:
        """A window's last event, from the store (None once retention swept it)."""
        body = await self.conn.scalar(select(events.c.body).where(events.c.id == event_id))
        return None if body is None else ReceivedEvent.model_validate_json(body)

    # -- decisions ---------------------------------------------------------------------

    def records(self, watch: Watch, outcome: Outcome) -> bool:
        """Whether a decision of this outcome would still be recorded in this batch."""
        return self.recorder.records(watch.automation_id, outcome)

    def decide(
        self, watch: Watch, outcome: Outcome, reason: str, event: ReceivedEvent | None
    ) -> None:
        """Record a decision about this trigger (within the budget)."""
        self.recorder.decide(
            Decision(
                automation_id=watch.automation_id,
                trigger_id=watch.id,
                outcome=outcome,
                reason=reason,
                event=event,
            )
        )

    # -- firing ------------------------------------------------------------------------

    async def fire(
        self, watch: Watch, bucket: Bucket, now: datetime, event: ReceivedEvent | None
    ) -> None:
        """The window fired: hand the firing up (compound triggers) or act on it."""
        if watch.reactive and event is not None:
            ident = firing_id(watch.id, event.id)
        else:
            ident = firing_id(watch.id, bucket.key, bucket.end.isoformat())
        if event is None and bucket.last_event is not None:
            event = await self.stored_event(bucket.last_event)
        trigger = watch.trigger
        if watch.reactive:
            why = f"{bucket.count} of {trigger.threshold} events within {span_text(trigger.within)}"
        else:
            why = (
                f"only {max(bucket.count, 0)} of {trigger.threshold} expected events in "
                f"{instant_text(bucket.start)}..{instant_text(bucket.end)}"
            )
        firing = Firing(
            id=ident,
            trigger_id=watch.id,
            automation=watch.automation,
            triggered=now,
            labels=_labels(watch, bucket),
            event=event,
            why=why,
        )
        parents = self.ev._parents
        outcome, reason = await propagate(self.conn, parents, watch.parent, firing, self.act)
        self.decide(watch, outcome, f"{reason}: {why}", event if watch.reactive else None)

    async def resolve(
        self, watch: Watch, bucket: Bucket, now: datetime, event: ReceivedEvent | None
    ) -> None:
        """The expected events arrived for a proactive trigger that fired: act on that."""
        if watch.parent is not None:
            return  # children of compound triggers do not resolve on their own
        firing = Firing(
            id=firing_id(watch.id, "resolved", event.id if event else bucket.end.isoformat()),
            trigger_id=watch.id,
            automation=watch.automation,
            triggered=now,
            state=FiringState.resolved,
            labels=_labels(watch, bucket),
            event=event,
            why="the expected events arrived",
        )
        outcome, reason = self.act(firing)
        self.decide(watch, outcome, f"{reason}: {firing.why}", event)

    async def metric(self, evaluated: metering.Evaluated) -> None:
        """One key of a metric trigger evaluated at a tick: fire, resolve, or record the
        value against the threshold."""
        watch, key, change = evaluated.watch, evaluated.state.key, evaluated.step.change
        labels = dict(zip(watch.for_each, orjson.loads(key), strict=False))
        why = evaluated.step.reason
        if change is None:
            self.recorder.decide(
                Decision(
                    automation_id=watch.automation_id,
                    trigger_id=watch.id,
                    outcome=Outcome.measured,
                    reason=why,
                )
            )
            return
        tick = evaluated.at.isoformat()
        if change == "fire":
            firing = Firing(
                id=firing_id(watch.id, key, "metric", tick),
                trigger_id=watch.id,
                automation=watch.automation,
                triggered=evaluated.at,
                labels=labels,
                why=why,
            )
            outcome, reason = await propagate(
                self.conn, self.ev._parents, watch.parent, firing, self.act
            )
        elif watch.parent is not None:
            outcome, reason = Outcome.measured, "children of compound triggers do not resolve"
        else:
            firing = Firing(
                id=firing_id(watch.id, key, "resolved", tick),
                trigger_id=watch.id,
                automation=watch.automation,
                triggered=evaluated.at,
                state=FiringState.resolved,
                labels=labels,
                why=why,
            )
            outcome, reason = self.act(firing)
        self.recorder.decide(
            Decision(
                automation_id=watch.automation_id,
                trigger_id=watch.id,
                outcome=outcome,
                reason=f"{reason}: {why}",
            )
        )

    def act(self, firing: Firing) -> tuple[Outcome, str]:
        """Queue the firing's event and action requests, unless the cascade guard stops
        it; returns what happened, in words."""
        subjects = self.ev.subjects
        if firing.depth > self.ev.max_depth:
            if firing.depth == self.ev.max_depth + 1:
                warning = loop_event(firing, self.ev.max_depth)
                self.result.messages.append(event_message(warning, subjects.events))
            return Outcome.stopped, (
                f"stopped: this would be firing number {firing.depth} in a chain of "
                f"automations (limit {self.ev.max_depth}, TRIPWIRE_MAX_CASCADE_DEPTH)"
            )
        self.result.firings.append(firing)
        announcement = state_event(firing)
        self.result.messages.append(event_message(announcement, subjects.events))
        for request in action_requests(firing):
            self.result.messages.append(
                Message(request.id, subjects.actions, request.model_dump_json().encode())
            )
        if firing.state is FiringState.resolved:
            return Outcome.resolved, "resolved"
        return Outcome.fired, "fired"

    # -- the end -----------------------------------------------------------------------

    async def finish(self) -> None:
        """Write the changed windows, the decisions and the outbox to the transaction."""
        windows = self.windows
        changed = windows.changed_buckets()
        await state.save_buckets(self.conn, changed, windows.removed, windows.stored)
        ends = [b.end for b in changed if b.proactive]
        if ends:
            self.result.next_due = min(ends)  # a proactive window opened or moved
        await state.write_decisions(self.conn, [d.row() for d in self.result.decisions])
        await state.write_outbox(self.conn, self.result.messages)


def _labels(watch: Watch, bucket: Bucket) -> dict[str, str]:
    """The for_each labels of a window, from its key."""
    return dict(zip(watch.trigger.for_each, orjson.loads(bucket.key), strict=False))
