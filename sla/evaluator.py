"""SLA evaluation: events move windows forward, timers declare misses.

One window per SLA and `for_each` key, in the database (`sla.windows`):
- deadline: the window of a deadline runs from the previous deadline (plus grace) to this
  one (plus grace); an expected event in it meets it. When its time is up the window
  rolls on to the next deadline, declaring a miss first if it was not met.
- duration: a `start` event opens the window (`within` long); an expected event closes it.
- freshness: every expected event pushes the window's end to `every` after it.
A miss stays on the window until an expected event recovers it; that event is spent on
the recovery and does not also meet the next deadline.

`evaluate` runs in the worker's batch transaction on newly stored events, so each event
counts once; `evaluate_due` runs on the timer. Both roll a window forward through every
instant that passed (`_advance`) before anything else, so whichever comes first decides
and the other finds nothing left to do.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import translate
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from events import clock
from events.metrics import SLA_EVENTS
from events.model import ReceivedEvent
from sla import windows as store
from sla.firing import Occurrence, SLAState, messages
from sla.model import SLA, DeadlineSLA, DurationSLA, FreshnessSLA
from sla.store import SLAStore
from sla.windows import Window, WindowId
from triggers.evaluator import Subjects
from triggers.matching import (
    document_labels,
    expression_holds,
    related_match,
    resource_matches,
)
from triggers.results import Result
from triggers.state import write_outbox

LATE_AFTER = timedelta(minutes=1)  # a miss found this long after its due is a catch-up
CATCH_UP_LIMIT = 10  # misses fired per key after downtime; older ones are counted
DUE_BATCH = 2000  # windows decided per timer pass (one transaction)
FORGET_MISSES_AFTER = timedelta(days=30)  # a duration or freshness miss never recovered
_TICK = timedelta(microseconds=1)

# Events already in the store that a new window should count: (sla, since, until).
Lookback = Callable[["Watched", datetime, datetime], Awaitable[list[dict[str, Any]]]]


def _names(globs: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{translate(g)})" for g in globs))


def _time(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@dataclass
class Watched:
    """One loaded SLA, ready to test events against."""

    id: str
    sla: SLA
    fingerprint: str
    expect: re.Pattern[str] = field(init=False)
    start: re.Pattern[str] | None = field(init=False)

    def __post_init__(self) -> None:
        self.expect = _names(self.sla.expect)
        self.start = _names(self.sla.start) if isinstance(self.sla, DurationSLA) else None

    def covers(self, document: dict[str, Any]) -> bool:
        """Labels, related resources and `where` hold for the event."""
        sla = self.sla
        if sla.match and not resource_matches(document["resource"], sla.match):
            return False
        if sla.match_related and not related_match(
            document.get("related") or (), sla.match_related
        ):
            return False
        return sla.where_expression is None or expression_holds(sla.where_expression, document)

    def key_of(self, document: dict[str, Any]) -> tuple[str, ...]:
        return document_labels(self.sla.for_each, document)

    def warn_at(self, deadline: datetime) -> datetime | None:
        warning = self.sla.warn_before
        return deadline - warning.before if warning is not None else None

    def first_window(self, key: str, labels: dict[str, str], at: datetime) -> Window:
        """The window that an event at `at` falls into, for a key seen for the first time
        (deadline, freshness) or started (duration)."""
        sla = self.sla
        if isinstance(sla, DeadlineSLA):
            calendar = sla.calendar
            deadline = calendar.next_deadline(at - sla.grace - _TICK)
            opened = calendar.previous_deadline(deadline) + sla.grace
            due = sla.due(deadline)
        else:
            span = sla.within if isinstance(sla, DurationSLA) else sla.every
            opened, deadline = at, at + span
            due = deadline
        return Window(
            sla_id=self.id,
            key=key,
            labels=labels,
            fingerprint=self.fingerprint,
            opened=opened,
            deadline=deadline,
            due=due,
            warn_at=self.warn_at(deadline),
        )


@dataclass
class _Pass:
    """One transaction's worth of SLA decisions."""

    subjects: Subjects
    now: datetime
    windows: dict[WindowId, Window] = field(default_factory=dict)
    changed: set[WindowId] = field(default_factory=set)
    removed: set[WindowId] = field(default_factory=set)
    occurrences: list[Occurrence] = field(default_factory=list)

    def report(self, watched: Watched, window: Window, state: SLAState, **values: Any) -> None:
        sla = watched.sla
        key = dict(zip(sla.for_each, orjson.loads(window.key), strict=False))
        values.setdefault("deadline", window.deadline)
        values.setdefault("window_start", window.opened)
        values.setdefault("window_end", window.due)
        values.setdefault("last_seen", window.last_seen)
        self.occurrences.append(
            Occurrence(
                state=state,
                sla_id=watched.id,
                sla=sla,
                key=key,
                resource=dict(window.labels),
                **values,
            )
        )

    def keep(self, window: Window) -> None:
        self.windows[window.ident] = window
        self.changed.add(window.ident)
        self.removed.discard(window.ident)

    def drop(self, window: Window) -> None:
        self.windows.pop(window.ident, None)
        self.changed.discard(window.ident)
        self.removed.add(window.ident)

    def late(self, due: datetime) -> bool:
        return self.now - due > LATE_AFTER

    # -- time passing -------------------------------------------------------------------

    def advance(self, watched: Watched, window: Window, until: datetime) -> None:
        """Everything that came due by `until`: warnings, misses, rolled deadlines."""
        sla = watched.sla
        if window.warn_at is not None and window.warn_at <= until:
            if window.armed and until < window.due and window.met is None:
                self.report(watched, window, SLAState.at_risk, at=window.warn_at)
            window.warn_at = None
            self.keep(window)
        if not window.armed or window.due > until:
            return
        if isinstance(sla, DeadlineSLA):
            self._roll_deadlines(watched, sla, window, until)
        else:
            self._miss(watched, window, window.deadline, late=self.late(window.due))
            window.armed = False
            window.warn_at = None
        self.keep(window)

    def _miss(self, watched: Watched, window: Window, deadline: datetime, **values: Any) -> None:
        if values.get("late") and watched.sla.catch_up == "skip":
            return
        self.report(watched, window, SLAState.missed, at=window.due, **values)
        window.missed, window.missed_id = deadline, str(self.occurrences[-1].id)

    def _roll_deadlines(
        self, watched: Watched, sla: DeadlineSLA, window: Window, until: datetime
    ) -> None:
        calendar = sla.calendar
        # Every deadline whose due passed: the window's own, then any that fell since.
        passed = [window.deadline, *calendar.deadlines_between(window.deadline, until - sla.grace)]
        skipped = max(0, len(passed) - CATCH_UP_LIMIT)
        for index, deadline in enumerate(passed):
            met = index == 0 and window.met is not None
            if not met and index >= skipped:
                window.deadline, window.due = deadline, sla.due(deadline)
                if index > 0:
                    window.opened = sla.due(passed[index - 1])
                self._miss(
                    watched,
                    window,
                    deadline,
                    late=self.late(sla.due(deadline)),
                    skipped=skipped if index == skipped else 0,
                )
        following = calendar.next_deadline(passed[-1])
        window.opened = sla.due(passed[-1])
        window.deadline, window.due = following, sla.due(following)
        window.met = None
        window.warn_at = watched.warn_at(following)

    # -- events -------------------------------------------------------------------------

    def on_event(
        self, watched: Watched, window: Window | None, key: str, document: dict[str, Any]
    ) -> None:
        sla = watched.sla
        at = _time(document["occurred"])
        name = document["event"]
        labels = dict(document["resource"])
        if window is not None:  # what came due by then (not after now: clocks drift)
            self.advance(watched, window, min(at, self.now))
        if isinstance(sla, DurationSLA):
            if window is not None and watched.expect.fullmatch(name):
                self._finish(watched, window, document, at)
                window = None
            starts = watched.start is not None and watched.start.fullmatch(name)
            if starts and (window is None or not window.armed):  # the first start counts
                window = watched.first_window(key, labels, at)
                window.last_seen, window.last_event = at, document["id"]
                self.keep(window)
            return
        if window is None:
            window = watched.first_window(key, labels, at)
        window.labels = labels
        recovering = window.missed is not None
        if recovering:
            self._recover(watched, window, document, at)
        if isinstance(sla, FreshnessSLA):
            if window.last_seen is None or at >= window.last_seen:
                window.deadline = window.due = at + sla.every
                window.opened, window.armed = at, True
                window.warn_at = watched.warn_at(window.deadline)
        elif not recovering and window.opened < at <= window.due and window.met is None:
            window.met = at
            self._met(watched, window, document, at)
        if window.last_seen is None or at >= window.last_seen:
            window.last_seen, window.last_event = at, document["id"]
        self.keep(window)

    def _finish(
        self, watched: Watched, window: Window, document: dict[str, Any], at: datetime
    ) -> None:
        """A duration's expected event: met, or a recovery after a miss."""
        window.last_seen, window.last_event = at, document["id"]
        if window.missed is not None:
            self._recover(watched, window, document, at)
        elif window.armed:
            self._met(watched, window, document, at)
        self.drop(window)

    def _met(
        self, watched: Watched, window: Window, document: dict[str, Any], at: datetime
    ) -> None:
        # Met after its early warning went out: said always, so the at-risk alert resolves.
        warned_at = watched.warn_at(window.deadline)
        if watched.sla.emit_met or (warned_at is not None and at >= warned_at):
            event = ReceivedEvent.from_stored(document)
            self.report(watched, window, SLAState.met, at=at, event=event, last_seen=at)

    def _recover(
        self, watched: Watched, window: Window, document: dict[str, Any], at: datetime
    ) -> None:
        assert window.missed is not None
        event = ReceivedEvent.from_stored(document)
        self.report(
            watched, window, SLAState.recovered, at=at, event=event, last_seen=at,
            deadline=window.missed,
        )  # fmt: skip
        window.missed = window.missed_id = None


class SLAEvaluator:
    """Loaded SLAs, evaluated on stored events and on the timer."""

    def __init__(
        self,
        subjects: Subjects,
        definitions: SLAStore | None = None,
        lookback: Lookback | None = None,
    ) -> None:
        self.subjects = subjects
        self.definitions = definitions
        self.lookback = lookback
        self.watched: dict[str, Watched] = {}
        self._by_name: dict[str, list[Watched]] = {}

    def load(self, loaded: Sequence[tuple[str, SLA, str]]) -> None:
        """Replace the SLAs: (id, definition, fingerprint) each; disabled ones are left out."""
        self.watched = {i: Watched(i, s, f) for i, s, f in loaded if s.enabled}
        self._by_name = {}

    async def reload(self) -> None:
        """Load the stored SLAs again."""
        if self.definitions is not None:
            stored = await self.definitions.all()
            self.load([(s.id, s.sla, s.fingerprint) for s in stored])

    def _candidates(self, name: str) -> list[Watched]:
        found = self._by_name.get(name)
        if found is None:
            found = [
                w
                for w in self.watched.values()
                if w.expect.fullmatch(name) or (w.start is not None and w.start.fullmatch(name))
            ]
            if len(self._by_name) < 10_000:  # names are few; a flood of unique ones is not
                self._by_name[name] = found
        return found

    async def evaluate(self, conn: AsyncConnection, documents: Sequence[dict[str, Any]]) -> Result:
        """Newly stored events, in the caller's transaction."""
        work: list[tuple[Watched, str, dict[str, Any]]] = []
        for document in documents:
            for watched in self._candidates(document["event"]):
                if watched.covers(document):
                    key = orjson.dumps(list(watched.key_of(document))).decode()
                    work.append((watched, key, document))
        if not work:
            return Result()
        work.sort(key=lambda item: _time(item[2]["occurred"]))
        run = _Pass(self.subjects, clock.now())
        idents = sorted({(w.id, key) for w, key, _ in work})
        await store.lock_windows(conn, idents)
        run.windows.update(await store.load(conn, idents))
        for watched, key, document in work:
            window = run.windows.get((watched.id, key))
            if window is not None and window.fingerprint != watched.fingerprint:
                window = None  # left from before the SLA changed what it watches
            run.on_event(watched, window, key, document)
        return await self._finish(conn, run)

    async def evaluate_due(self, conn: AsyncConnection, now: datetime) -> Result:
        """Windows whose time came by `now`; opens the windows of unkeyed SLAs."""
        run = _Pass(self.subjects, now)
        await self._open_unkeyed(conn, run)
        ids = list(self.watched)
        due = await store.due(conn, ids, now, DUE_BATCH)
        if due:
            idents = [w.ident for w in due]
            await store.lock_windows(conn, idents)
            for window in (await store.load(conn, idents)).values():
                watched = self.watched.get(window.sla_id)
                if watched is not None and window.ident not in run.windows:
                    run.windows[window.ident] = window
                    run.advance(watched, window, now)
        result = await self._finish(conn, run)
        await store.sweep(conn, now - FORGET_MISSES_AFTER)
        upcoming = await store.next_due(conn, ids)
        if len(due) == DUE_BATCH:
            upcoming = now  # more are due: come back at once
        result.next_due = upcoming
        return result

    async def _open_unkeyed(self, conn: AsyncConnection, run: _Pass) -> None:
        """An SLA without for_each watches from the moment it is applied: deadlines and
        freshness with `start: apply` open their window on the first timer pass, counting
        events already stored since the window began."""
        wanted = [
            w
            for w in self.watched.values()
            if not w.sla.for_each
            and (
                isinstance(w.sla, DeadlineSLA)
                or (isinstance(w.sla, FreshnessSLA) and w.sla.start == "apply")
            )
        ]
        if not wanted:
            return
        await store.lock_windows(conn, [(w.id, "[]") for w in wanted])
        existing = await store.existing_keys(conn, [w.id for w in wanted])
        for watched in wanted:
            if (watched.id, "[]") in existing:
                continue
            window = watched.first_window("[]", {}, run.now)
            sla = watched.sla
            since = run.now - sla.every if isinstance(sla, FreshnessSLA) else window.opened
            run.keep(window)
            if self.lookback is None:
                continue
            for document in await self.lookback(watched, since, run.now):
                if watched.covers(document):
                    run.on_event(watched, run.windows[window.ident], "[]", document)

    async def _finish(self, conn: AsyncConnection, run: _Pass) -> Result:
        changed = [run.windows[i] for i in run.changed if i in run.windows]
        await store.save(conn, changed, run.removed)
        result = Result()
        for occurrence in run.occurrences:
            SLA_EVENTS.labels(occurrence.sla.name, occurrence.state.value).inc()
            result.messages += messages(occurrence, self.subjects.events, self.subjects.actions)
        await write_outbox(conn, result.messages)
        upcoming = [w.due for w in changed if w.armed] + [
            w.warn_at for w in changed if w.warn_at is not None
        ]
        result.next_due = min(upcoming) if upcoming else None
        return result
