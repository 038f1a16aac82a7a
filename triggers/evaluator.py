"""Trigger evaluation with Prefect's semantics, state in the database.

`evaluate` takes a batch of newly stored events and, in the caller's transaction: finds
candidate triggers by event name, tests labels, related resources and `where`, updates
the windows (buckets) the events fall into, fires, records why each candidate did or did
not fire, and queues the resulting messages in the outbox. `evaluate_due` does the same
for proactive windows whose time is up. Live evaluation, the timers and `tripwire test`
all run this code.

The window rules are Prefect's: a window is `within` long; a Reactive trigger fires as
soon as `threshold` events fall into the open window and then waits out the window; a
Proactive one fires when its window ends with fewer than `threshold`. The first window
for a key reaches back 15 minutes, so out-of-order events still count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from actions.request import FiringState
from events import clock
from events.model import ReceivedEvent
from events.tables import events
from triggers import state
from triggers.automation import Automation
from triggers.compiled import EventScreen, Screens
from triggers.firing import (
    Firing,
    Message,
    action_requests,
    firing_id,
    loop_event,
    state_event,
)
from triggers.identity import Composite, event_triggers, stamped, walk
from triggers.index import CandidateIndex, Group, Roles, Watch
from triggers.matching import key_text, why_not_covered
from triggers.model import CompoundTrigger
from triggers.ordering import causal_order, overdue
from triggers.state import Bucket, BucketId, ChildFiring, Shape

LOOKBACK = timedelta(minutes=15)  # Prefect's PRECEDING_EVENT_LOOKBACK
SWEEP_GRACE = timedelta(seconds=60)  # Prefect's expired-bucket buffer
RESOLVE_HORIZON = timedelta(days=1)  # how long a late event still resolves a firing
DUE_BATCH = 500


class Outcome(StrEnum):
    """What happened to one candidate (event x trigger)."""

    fired = "fired"
    resolved = "resolved"
    counted = "counted"
    armed = "armed"
    waiting = "waiting"  # not armed: no `after` event yet
    late = "late"
    unmatched = "unmatched"  # labels or related resources
    filtered = "filtered"  # `where` was false
    paused = "paused"
    stopped = "stopped"  # the cascade guard
    expired = "expired"  # a proactive window ended with enough events


ALWAYS_RECORDED = frozenset({Outcome.fired, Outcome.resolved, Outcome.armed, Outcome.stopped})


@dataclass
class Decision:
    """Why one automation did or did not fire on one event (or at one window's end)."""

    automation_id: str
    trigger_id: str
    outcome: Outcome
    reason: str
    event: ReceivedEvent | None = None
    decided: datetime = field(default_factory=clock.now)

    def row(self) -> dict[str, Any]:
        event = self.event
        return {
            "automation_id": self.automation_id,
            "trigger_id": self.trigger_id,
            "event_id": str(event.id) if event else None,
            "event": event.event if event else None,
            "occurred": event.occurred if event else None,
            "decided": self.decided,
            "outcome": self.outcome.value,
            "reason": self.reason,
        }


@dataclass
class Result:
    """What one evaluation pass produced (already written to the transaction)."""

    firings: list[Firing] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    next_due: datetime | None = None


Candidate = tuple[ReceivedEvent, Watch, str, Roles]  # an event, a watch it passes, its key


@dataclass(frozen=True)
class Subjects:
    """Where firings publish: the events subject and the actions subject."""

    events: str
    actions: str


def _window(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _at(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _event_json(event: ReceivedEvent) -> str:
    return event.model_dump_json()


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
        self.index = CandidateIndex(())
        self.screens = Screens()
        self._parents: dict[str, Composite | None] = {}

    def load(self, automations: Sequence[Automation]) -> None:
        """Replace the loaded automations (ids are filled in when missing)."""
        watches: list[Watch] = []
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
            work += run.recorder.screen_event(self, document)
        if work:
            idents = list(dict.fromkeys((w.id, key) for _, w, key, _ in work))
            await state.lock(conn, [state.bucket_lock(i) for i in idents])
            run.loaded(await state.load_buckets(conn, idents))
            for event, watch, key, roles in work:
                await run.on_event(watch, key, event, roles)
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
                w.id,
                key_text(()),
                w.automation_id,
                now,
                now + w.trigger.within,
                0,
                None,
                None,
                True,
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
            run.loaded(current)
            for bucket in current.values():
                watch = run.watch_of(bucket)
                if watch is not None and bucket.end <= now:  # still due under the lock
                    await run.evaluate_bucket(watch, bucket, now, None)
        await state.sweep_buckets(conn, now - SWEEP_GRACE)
        await run.finish()
        run.result.next_due = await state.next_due(conn, ids)
        for part in ("firings", "messages", "decisions"):
            getattr(run.result, part)[:0] = getattr(followers, part)
        return run.result


class Sampling:
    """At most `per_second` non-firing decisions per automation per second of the clock,
    over all batches (None: no limit).

    Under a steady load the worker handles many small batches, and a budget per batch
    alone would record (and word, and write) a decision per automation per batch: at
    1,000 events/s that cost more than evaluating the events. Firings are always kept.
    """

    def __init__(self, per_second: int | None) -> None:
        self.per_second = per_second
        self._second = 0
        self._spent: dict[str, int] = {}

    def start(self) -> None:
        """A batch begins: a new second starts every automation's count again."""
        second = int(clock.now().timestamp())
        if second != self._second:
            self._second, self._spent = second, {}

    def allows(self, automation_id: str) -> bool:
        return self.per_second is None or self._spent.get(automation_id, 0) < self.per_second

    def spend(self, automation_id: str) -> None:
        if self.per_second is not None:
            self._spent[automation_id] = self._spent.get(automation_id, 0) + 1


class _Recorder:
    """The decisions of one batch: every firing, and at most `per_batch` others per
    automation, within what `sampling` allows (a reason is worded only while it would
    still be recorded)."""

    def __init__(self, per_batch: int, decisions: list[Decision], sampling: Sampling) -> None:
        self.per_batch = per_batch
        self.decisions = decisions
        self.sampling = sampling
        sampling.start()
        self._left: dict[str, int] = {}
        self._worded: dict[Group, int] = {}  # events whose mismatch was worded, per group
        self._silent: set[Group] = set()  # groups whose mismatches go unrecorded

    def records(self, automation_id: str, outcome: Outcome) -> bool:
        """Whether a decision of this outcome would still be recorded in this batch."""
        return outcome in ALWAYS_RECORDED or (
            self._left.get(automation_id, self.per_batch) > 0
            and self.sampling.allows(automation_id)
        )

    def decide(self, decision: Decision) -> None:
        automation_id = decision.automation_id
        if not self.records(automation_id, decision.outcome):
            return
        if decision.outcome not in ALWAYS_RECORDED:
            self._left[automation_id] = self._left.get(automation_id, self.per_batch) - 1
            self.sampling.spend(automation_id)
        self.decisions.append(decision)

    def screen(self, group: Group, screen: EventScreen) -> list[tuple[Watch, str, Roles]]:
        """The watches of the group the event concerns, with their bucket keys. The
        others get a decision, worded only while this batch still records them."""
        if not group.enabled:
            outcome = Outcome.paused
        elif not screen.covers(group.compiled):
            outcome = Outcome.unmatched
        elif not screen.where(group.compiled):
            outcome = Outcome.filtered
        else:
            return [
                (w, screen.key(w.for_each), roles)
                for w, roles in zip(group.watches, group.roles, strict=True)
            ]
        if group in self._silent:
            return []
        worded = self._worded.get(group, 0)
        if worded >= self.per_batch or not any(
            self.records(w.automation_id, outcome) for w in group.watches
        ):
            # Budgets only shrink within a batch: no later event of it is recorded either.
            self._silent.add(group)
            return []
        self._worded[group] = worded + 1
        # A group shares its specs and `where`, so one reason serves all its watches.
        event, trigger = screen.event, group.watches[0].trigger
        if outcome is Outcome.paused:
            reason = "the automation is paused"
        elif outcome is Outcome.unmatched:
            reason = why_not_covered(trigger, event) or "labels did not match"
        else:
            reason = f"where was false: {trigger.where}"
        for watch in group.watches:
            self.decide(Decision(watch.automation_id, watch.id, outcome, reason, event))
        return []

    def screen_event(self, ev: Evaluator, document: dict[str, Any]) -> list[Candidate]:
        """The candidates an event passes, with their bucket keys."""
        groups = ev.index.candidates(document["event"])
        if not groups:
            return []
        screen = ev.screens.screen(document)
        return [
            (screen.event, watch, key, roles)
            for group in groups
            for watch, key, roles in self.screen(group, screen)
        ]


class _Pass:
    """One transaction's worth of evaluation."""

    def __init__(self, evaluator: Evaluator, conn: AsyncConnection) -> None:
        self.ev = evaluator
        self.conn = conn
        self.buckets: dict[BucketId, Bucket] = {}
        self.stored: dict[BucketId, Shape] = {}  # as loaded, before this pass changed them
        self.changed: set[BucketId] = set()
        self.removed: set[BucketId] = set()
        self.result = Result()
        self.recorder = _Recorder(
            evaluator.decisions_per_batch, self.result.decisions, evaluator.sampling
        )
        self._id_of: ReceivedEvent | None = None
        self._id_text = ""

    async def stored_event(self, event_id: str) -> ReceivedEvent | None:
        """A window's last event, from the store (None once retention swept it)."""
        body = await self.conn.scalar(select(events.c.body).where(events.c.id == event_id))
        return None if body is None else ReceivedEvent.model_validate_json(body)

    def event_id(self, event: ReceivedEvent) -> str:
        """The event's id as text, made once for its run of candidates (formatting a
        UUID costs about 1 µs, and an event touches about nine windows)."""
        if event is not self._id_of:
            self._id_of, self._id_text = event, str(event.id)
        return self._id_text

    def watch_of(self, bucket: Bucket) -> Watch | None:
        return self.ev.watch_by_id.get(bucket.trigger_id)

    # -- decisions ---------------------------------------------------------------------

    def records(self, watch: Watch, outcome: Outcome) -> bool:
        return self.recorder.records(watch.automation_id, outcome)

    def decide(
        self, watch: Watch, outcome: Outcome, reason: str, event: ReceivedEvent | None
    ) -> None:
        self.recorder.decide(Decision(watch.automation_id, watch.id, outcome, reason, event))

    # -- buckets -----------------------------------------------------------------------

    def loaded(self, buckets: dict[BucketId, Bucket]) -> None:
        self.buckets.update(buckets)
        self.stored.update((ident, bucket.shape) for ident, bucket in buckets.items())

    def put(self, bucket: Bucket) -> Bucket:
        self.buckets[bucket.ident] = bucket
        self.changed.add(bucket.ident)
        self.removed.discard(bucket.ident)
        return bucket

    def remove(self, ident: BucketId) -> None:
        self.buckets.pop(ident, None)
        self.changed.discard(ident)
        self.removed.add(ident)

    def ensure(
        self,
        watch: Watch,
        key: str,
        start: datetime,
        end: datetime,
        event: ReceivedEvent,
        count: int = 0,
    ) -> Bucket:
        existing = self.buckets.get((watch.id, key))
        if existing is not None:
            existing.last_event = self.event_id(event)
            self.changed.add(existing.ident)
            return existing
        return self.put(
            Bucket(
                watch.id,
                key,
                watch.automation_id,
                start,
                end,
                count,
                self.event_id(event),
                None,
                not watch.reactive,
            )
        )

    async def on_event(self, watch: Watch, key: str, event: ReceivedEvent, roles: Roles) -> None:
        trigger = watch.trigger
        now = event.occurred
        expected, arming = roles
        bucket: Bucket | None = None
        waiting = self.buckets.get((watch.id, key))
        if waiting is not None and _awaiting_resolve(waiting):
            if not expected and not arming:
                return
            self.remove(waiting.ident)
            if expected:
                await self.resolve(watch, waiting, now, event)
                if not arming:
                    return
        if trigger.after and arming:
            # When an event is both `after` and `expect`, it opens the window without
            # counting in it (Prefect starts the count at -1 for it).
            bucket = self.ensure(
                watch, key, now, now + trigger.within, event, -1 if expected else 0
            )
            if not expected:
                self.decide(
                    watch,
                    Outcome.armed,
                    f"armed: counting {', '.join(trigger.expect) or 'events'} for "
                    f"{_window(trigger.within)}",
                    event,
                )
                return
        if bucket is None and not trigger.after and expected:
            bucket = self.ensure(watch, key, now - LOOKBACK, now + trigger.within, event)
        if bucket is None:
            bucket = self.buckets.get((watch.id, key))
            if bucket is None:
                self.decide(
                    watch,
                    Outcome.waiting,
                    f"not armed: waiting for an after event ({', '.join(trigger.after)})",
                    event,
                )
                return
        await self.evaluate_bucket(watch, bucket, now, event)

    async def evaluate_bucket(
        self, watch: Watch, bucket: Bucket, now: datetime, event: ReceivedEvent | None
    ) -> None:
        """Prefect's `evaluate`: count, fire, and open the next window."""
        trigger = watch.trigger
        pending = 1 if event is not None else 0
        if now < bucket.start:
            if not self.records(watch, Outcome.late):
                return
            self.decide(
                watch,
                Outcome.late,
                f"occurred before the open window (from {_at(bucket.start)}): it fired "
                "already in this window, or the event is older than the window",
                event,
            )
            return
        if pending and (watch.immediate or bucket.start <= now < bucket.end):
            bucket.count += 1
            bucket.last_event = self.event_id(event) if event is not None else bucket.last_event
            self.changed.add(bucket.ident)
            pending = 0
            if bucket.triggered is not None and bucket.count >= trigger.threshold:
                bucket.triggered = None
                await self.resolve(watch, bucket, now, event)
        ready = watch.reactive or bucket.end <= now
        meets = (
            bucket.count >= trigger.threshold
            if watch.reactive
            else bucket.count < trigger.threshold
        )
        fired = False
        if ready and meets:
            await self.fire(watch, bucket, now, event)
            self.remove(bucket.ident)
            fired = True
        elif now < bucket.end:
            if event is not None and self.records(watch, Outcome.counted):
                self.decide(watch, Outcome.counted, self._tally(watch, bucket), event)
            return
        elif event is None:
            self.decide(
                watch,
                Outcome.expired,
                f"window {_at(bucket.start)}..{_at(bucket.end)} saw {max(bucket.count, 0)} "
                f"of {trigger.threshold} expected events: no firing",
                None,
            )
        if trigger.after:
            self.remove(bucket.ident)
            if fired and not watch.reactive and watch.parent is None:
                # Disarmed until the next `after` event, but an expected event that comes
                # late still resolves the firing.
                self.put(
                    Bucket(
                        watch.id,
                        bucket.key,
                        watch.automation_id,
                        now,
                        now + RESOLVE_HORIZON,
                        0,
                        bucket.last_event,
                        now,
                        False,
                    )
                )
            return
        if trigger.within == timedelta(0):
            return
        start = max(bucket.end, now)
        triggered = now if fired and not watch.reactive else None
        fresh = Bucket(
            watch.id,
            bucket.key,
            watch.automation_id,
            start,
            start + trigger.within,
            0 if watch.reactive else pending,
            bucket.last_event,
            triggered,
            not watch.reactive,
        )
        self.put(fresh)
        if watch.reactive and pending:
            # The event belongs to the next window: count it there (Prefect's case 4).
            await self.evaluate_bucket(watch, fresh, now, event)

    def _tally(self, watch: Watch, bucket: Bucket) -> str:
        trigger = watch.trigger
        if watch.reactive:
            return (
                f"{bucket.count} of {trigger.threshold} events within "
                f"{_window(trigger.within)} (window ends {_at(bucket.end)})"
            )
        return (
            f"{bucket.count} of {trigger.threshold} expected events so far "
            f"(window ends {_at(bucket.end)})"
        )

    # -- firing ------------------------------------------------------------------------

    def _labels(self, watch: Watch, bucket: Bucket) -> dict[str, str]:
        return dict(zip(watch.trigger.for_each, orjson.loads(bucket.key), strict=False))

    async def fire(
        self, watch: Watch, bucket: Bucket, now: datetime, event: ReceivedEvent | None
    ) -> None:
        if watch.reactive and event is not None:
            ident = firing_id(watch.id, event.id)
        else:
            ident = firing_id(watch.id, bucket.key, bucket.end.isoformat())
        if event is None and bucket.last_event is not None:
            event = await self.stored_event(bucket.last_event)
        trigger = watch.trigger
        if watch.reactive:
            why = f"{bucket.count} of {trigger.threshold} events within {_window(trigger.within)}"
        else:
            why = (
                f"only {max(bucket.count, 0)} of {trigger.threshold} expected events in "
                f"{_at(bucket.start)}..{_at(bucket.end)}"
            )
        firing = Firing(
            ident,
            watch.id,
            watch.automation,
            now,
            labels=self._labels(watch, bucket),
            event=event,
            why=why,
        )
        outcome, reason = await self.propagate(watch.parent, firing)
        self.decide(watch, outcome, f"{reason}: {why}", event if watch.reactive else None)

    async def resolve(
        self, watch: Watch, bucket: Bucket, now: datetime, event: ReceivedEvent | None
    ) -> None:
        if watch.parent is not None:
            return  # children of compound triggers do not resolve on their own
        firing = Firing(
            firing_id(watch.id, "resolved", event.id if event else bucket.end.isoformat()),
            watch.id,
            watch.automation,
            now,
            FiringState.resolved,
            self._labels(watch, bucket),
            event,
            why="the expected events arrived",
        )
        outcome, reason = await self.propagate(None, firing)
        self.decide(watch, outcome, f"{reason}: {firing.why}", event)

    async def propagate(self, parent: Composite | None, firing: Firing) -> tuple[Outcome, str]:
        """Hand a firing up the tree; at the top, act. Returns what happened, in words."""
        if parent is None:
            return self.act(firing)
        parent_id = str(parent.id)
        grand = self.ev._parents.get(parent_id)
        needed = _needed(parent)
        if needed == 1:
            why = f"{_kind(parent)} trigger: a child fired ({firing.why})"
            return await self.propagate(grand, _lifted(firing, parent_id, [str(firing.id)], why))
        await state.lock(self.conn, [f"composite:{parent_id}"])
        keep_since = firing.triggered - parent.within if parent.within is not None else None
        firings = await state.record_child_firing(
            self.conn,
            parent_id,
            str(firing.automation.id),
            ChildFiring(
                firing.trigger_id,
                str(firing.id),
                firing.triggered,
                _event_json(firing.event) if firing.event else None,
            ),
            keep_since,
        )
        within = f" within {_window(parent.within)}" if parent.within else ""
        if not _ready(parent, firings):
            return Outcome.counted, (
                f"child trigger fired ({firing.why}); {_kind(parent)} trigger has "
                f"{len(firings)} of {needed} child firings{within}"
            )
        await state.clear_child_firings(self.conn, parent_id, [f.firing_id for f in firings])
        why = f"{_kind(parent)} trigger: {len(firings)} of {needed} children fired{within}"
        ids = sorted(f.firing_id for f in firings)
        return await self.propagate(grand, _lifted(firing, parent_id, ids, why))

    def act(self, firing: Firing) -> tuple[Outcome, str]:
        subjects = self.ev.subjects
        if firing.depth > self.ev.max_depth:
            if firing.depth == self.ev.max_depth + 1:
                warning = loop_event(firing, self.ev.max_depth)
                self.result.messages.append(
                    Message(warning.id, subjects.events, warning.model_dump_json().encode())
                )
            return Outcome.stopped, (
                f"stopped: this would be firing number {firing.depth} in a chain of "
                f"automations (limit {self.ev.max_depth}, TRIPWIRE_MAX_CASCADE_DEPTH)"
            )
        self.result.firings.append(firing)
        announcement = state_event(firing)
        self.result.messages.append(
            Message(announcement.id, subjects.events, announcement.model_dump_json().encode())
        )
        for request in action_requests(firing):
            self.result.messages.append(
                Message(request.id, subjects.actions, request.model_dump_json().encode())
            )
        if firing.state is FiringState.resolved:
            return Outcome.resolved, "resolved"
        return Outcome.fired, "fired"

    async def finish(self) -> None:
        changed = [self.buckets[i] for i in self.changed if i in self.buckets]
        await state.save_buckets(self.conn, changed, self.removed, self.stored)
        ends = [b.end for b in changed if b.proactive]
        if ends:
            self.result.next_due = min(ends)  # a proactive window opened or moved
        await state.write_decisions(self.conn, [d.row() for d in self.result.decisions])
        await state.write_outbox(self.conn, self.result.messages)


def _lifted(child: Firing, parent_id: str, child_ids: list[str], why: str) -> Firing:
    """The parent trigger's firing, made of its children's (the latest one's event)."""
    return Firing(
        firing_id(parent_id, *child_ids),
        parent_id,
        child.automation,
        child.triggered,
        labels=child.labels,
        event=child.event,
        why=why,
    )


def _awaiting_resolve(bucket: Bucket) -> bool:
    """The marker a fired, disarmed proactive trigger leaves: no timer, only resolving."""
    return bucket.triggered is not None and not bucket.proactive


def _kind(trigger: Composite) -> str:
    return "compound" if isinstance(trigger, CompoundTrigger) else "sequence"


def _needed(trigger: Composite) -> int:
    if isinstance(trigger, CompoundTrigger):
        if trigger.require == "any":
            return 1
        if trigger.require == "all":
            return len(trigger.triggers)
        return trigger.require
    return len(trigger.triggers)


def _ready(trigger: Composite, firings: list[ChildFiring]) -> bool:
    if isinstance(trigger, CompoundTrigger):
        return len({f.child_id for f in firings}) >= _needed(trigger)
    order = [str(t.id) for t in trigger.triggers]
    fired = sorted(
        firings,
        key=lambda f: (f.triggered, order.index(f.child_id) if f.child_id in order else len(order)),
    )
    return [f.child_id for f in fired] == order
