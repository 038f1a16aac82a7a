"""Prefect's window rules, on the windows (buckets) one evaluation pass reads and changes.

A window is `within` long. A Reactive trigger fires as soon as `threshold` events fall
into the open window, and then waits out the window; a Proactive one fires when its
window ends with fewer than `threshold`. The first window for a key reaches back 15
minutes, so out-of-order events still count. A trigger with `after` events is armed by
one of them and opens its window then; a fired proactive one stays, disarmed, only to be
resolved by an expected event that comes late.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from events.model import ReceivedEvent
from triggers.index import Roles, Watch
from triggers.results import Outcome, instant_text, span_text
from triggers.state import Bucket, BucketId, Shape

LOOKBACK = timedelta(minutes=15)  # Prefect's PRECEDING_EVENT_LOOKBACK
RESOLVE_HORIZON = timedelta(days=1)  # how long a late event still resolves a firing


class Reporter(Protocol):
    """What the rules tell the pass: decisions, and windows that fire or resolve."""

    def records(self, watch: Watch, outcome: Outcome) -> bool:
        """Whether a decision of this outcome would still be recorded."""
        ...

    def decide(
        self, watch: Watch, outcome: Outcome, reason: str, event: ReceivedEvent | None
    ) -> None:
        """Record a decision (within the budget)."""
        ...

    async def fire(
        self, watch: Watch, bucket: Bucket, now: datetime, event: ReceivedEvent | None
    ) -> None:
        """The window fired."""
        ...

    async def resolve(
        self, watch: Watch, bucket: Bucket, now: datetime, event: ReceivedEvent | None
    ) -> None:
        """The expected events arrived for a window that fired."""
        ...


class Windows:
    """The windows of one pass: loaded from the database, changed by events and by the
    clock, and what changed written back at the end (see `triggers.state`)."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.buckets: dict[BucketId, Bucket] = {}
        self.stored: dict[BucketId, Shape] = {}  # as loaded, before this pass changed them
        self.changed: set[BucketId] = set()
        self.removed: set[BucketId] = set()
        self._id_of: ReceivedEvent | None = None
        self._id_text = ""

    def event_id(self, event: ReceivedEvent) -> str:
        """The event's id as text, made once for its run of candidates (an event touches
        about nine windows)."""
        if event is not self._id_of:
            self._id_of, self._id_text = event, str(event.id)
        return self._id_text

    # -- the working set ---------------------------------------------------------------

    def loaded(self, buckets: dict[BucketId, Bucket]) -> None:
        """Take in windows read from the database."""
        self.buckets.update(buckets)
        self.stored.update((ident, bucket.shape) for ident, bucket in buckets.items())

    def put(self, bucket: Bucket) -> Bucket:
        """Add or replace a window."""
        self.buckets[bucket.ident] = bucket
        self.changed.add(bucket.ident)
        self.removed.discard(bucket.ident)
        return bucket

    def remove(self, ident: BucketId) -> None:
        """Drop a window (deleted at the end of the pass)."""
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
        """The window of this trigger and key, opened from `start` to `end` when there is
        none; either way `event` is its last event."""
        existing = self.buckets.get((watch.id, key))
        if existing is not None:
            existing.last_event = self.event_id(event)
            self.changed.add(existing.ident)
            return existing
        return self.put(
            Bucket(
                trigger_id=watch.id,
                key=key,
                automation_id=watch.automation_id,
                start=start,
                end=end,
                count=count,
                last_event=self.event_id(event),
                triggered=None,
                proactive=not watch.reactive,
            )
        )

    def changed_buckets(self) -> list[Bucket]:
        """The windows this pass created or changed and did not remove."""
        return [self.buckets[i] for i in self.changed if i in self.buckets]

    # -- the rules ---------------------------------------------------------------------

    async def on_event(self, watch: Watch, key: str, event: ReceivedEvent, roles: Roles) -> None:
        """An event the trigger cares about (it expects it, or it arms the trigger)."""
        report = self.reporter
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
                await report.resolve(watch, waiting, now, event)
                if not arming:
                    return
        if trigger.after and arming:
            # When an event is both `after` and `expect`, it opens the window without
            # counting in it (Prefect starts the count at -1 for it).
            bucket = self.ensure(
                watch, key, now, now + trigger.within, event, -1 if expected else 0
            )
            if not expected:
                report.decide(
                    watch,
                    Outcome.armed,
                    f"armed: counting {', '.join(trigger.expect) or 'events'} for "
                    f"{span_text(trigger.within)}",
                    event,
                )
                return
        if bucket is None and not trigger.after and expected:
            bucket = self.ensure(watch, key, now - LOOKBACK, now + trigger.within, event)
        if bucket is None:
            bucket = self.buckets.get((watch.id, key))
            if bucket is None:
                report.decide(
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
        report = self.reporter
        trigger = watch.trigger
        pending = 1 if event is not None else 0
        if now < bucket.start:
            if not report.records(watch, Outcome.late):
                return
            report.decide(
                watch,
                Outcome.late,
                f"occurred before the open window (from {instant_text(bucket.start)}): it "
                "fired already in this window, or the event is older than the window",
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
                await report.resolve(watch, bucket, now, event)
        ready = watch.reactive or bucket.end <= now
        meets = (
            bucket.count >= trigger.threshold
            if watch.reactive
            else bucket.count < trigger.threshold
        )
        fired = False
        if ready and meets:
            await report.fire(watch, bucket, now, event)
            self.remove(bucket.ident)
            fired = True
        elif now < bucket.end:
            if event is not None and report.records(watch, Outcome.counted):
                report.decide(watch, Outcome.counted, _tally(watch, bucket), event)
            return
        elif event is None:
            report.decide(
                watch,
                Outcome.expired,
                f"window {instant_text(bucket.start)}..{instant_text(bucket.end)} saw "
                f"{max(bucket.count, 0)} of {trigger.threshold} expected events: no firing",
                None,
            )
        if trigger.after:
            self.remove(bucket.ident)
            if fired and not watch.reactive and watch.parent is None:
                # Disarmed until the next `after` event, but an expected event that comes
                # late still resolves the firing.
                self.put(
                    Bucket(
                        trigger_id=watch.id,
                        key=bucket.key,
                        automation_id=watch.automation_id,
                        start=now,
                        end=now + RESOLVE_HORIZON,
                        count=0,
                        last_event=bucket.last_event,
                        triggered=now,
                        proactive=False,
                    )
                )
            return
        if trigger.within == timedelta(0):
            return
        start = max(bucket.end, now)
        fresh = Bucket(
            trigger_id=watch.id,
            key=bucket.key,
            automation_id=watch.automation_id,
            start=start,
            end=start + trigger.within,
            count=0 if watch.reactive else pending,
            last_event=bucket.last_event,
            triggered=now if fired and not watch.reactive else None,
            proactive=not watch.reactive,
        )
        self.put(fresh)
        if watch.reactive and pending:
            # The event belongs to the next window: count it there (Prefect's case 4).
            await self.evaluate_bucket(watch, fresh, now, event)


def _tally(watch: Watch, bucket: Bucket) -> str:
    trigger = watch.trigger
    if watch.reactive:
        return (
            f"{bucket.count} of {trigger.threshold} events within "
            f"{span_text(trigger.within)} (window ends {instant_text(bucket.end)})"
        )
    return (
        f"{bucket.count} of {trigger.threshold} expected events so far "
        f"(window ends {instant_text(bucket.end)})"
    )


def _awaiting_resolve(bucket: Bucket) -> bool:
    """The marker a fired, disarmed proactive trigger leaves: no timer, only resolving."""
    return bucket.triggered is not None and not bucket.proactive
