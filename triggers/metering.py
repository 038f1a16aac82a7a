"""Metric triggers in an evaluation pass: flow-run events feed each trigger's runs as they
are stored, and the timer evaluates every trigger on a tick (every 10 s of event time).

Both halves run in the caller's transaction. A batch takes a lock per (trigger, run) it
changes, with the windows' locks; a tick takes a lock per trigger, so two timers that
overlap while the leadership changes evaluate a tick once: a trigger whose keys were
evaluated at this tick already is skipped. The rules are in `triggers.metrics`, the rows
in `triggers.metric_store`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from triggers import metric_store, state
from triggers.automation import Automation
from triggers.compiled import CompiledTrigger, Screens
from triggers.identity import Composite, metric_triggers
from triggers.metrics import (
    TICK,
    KeyState,
    RunProgress,
    StateChange,
    Step,
    observe,
    state_change,
    step,
    tick_at,
)
from triggers.model import MetricTrigger

SWEEP_EVERY = timedelta(minutes=5)


class MetricWatch:
    """One metric trigger of one automation, ready to feed and evaluate."""

    __slots__ = ("automation", "automation_id", "compiled", "for_each", "id", "parent", "trigger")

    def __init__(
        self,
        automation: Automation,
        trigger: MetricTrigger,
        parent: Composite | None,
        compiled: CompiledTrigger,
    ) -> None:
        self.automation = automation
        self.trigger = trigger
        self.parent = parent
        self.compiled = compiled
        self.id = str(trigger.id)
        self.automation_id = str(automation.id)
        self.for_each = tuple(trigger.for_each)


def watches_of(automation: Automation, screens: Screens) -> list[MetricWatch]:
    """The metric triggers of a (stamped) automation."""
    return [
        MetricWatch(automation, trigger, parent, screens.compile(trigger))
        for trigger, parent in metric_triggers(automation)
    ]


Fed = tuple[MetricWatch, str, StateChange]  # a watch, the run's key, what the event says


def fed(
    watches: Sequence[MetricWatch], screens: Screens, documents: Iterable[dict[str, Any]]
) -> list[Fed]:
    """The flow-run state changes among the events, with the metric triggers they feed
    (those whose `match` and `match_related` the event passes)."""
    found: list[Fed] = []
    if not watches:
        return found
    for document in documents:
        change = state_change(document)
        if change is None:
            continue
        screen = screens.screen(document)
        for watch in watches:
            if screen.covers(watch.compiled):
                found.append((watch, screen.key(watch.for_each), change))
    return found


def run_locks(feeding: Sequence[Fed]) -> list[str]:
    """The locks a batch takes for the runs it changes."""
    return [metric_store.run_lock(w.id, c.run) for w, _, c in feeding]


async def feed(conn: AsyncConnection, feeding: Sequence[Fed]) -> None:
    """Take the state changes into the runs' progress (the caller holds `run_locks`)."""
    if not feeding:
        return
    idents = list(dict.fromkeys((w.id, c.run) for w, _, c in feeding))
    runs = await metric_store.load_runs(conn, idents)
    for watch, key, change in feeding:
        progress = runs.get((watch.id, change.run))
        if progress is None:
            progress = runs[(watch.id, change.run)] = RunProgress(
                trigger_id=watch.id, run=change.run, automation_id=watch.automation_id, key=key
            )
        observe(progress, change, watch.trigger.metric.name)
    await metric_store.save_runs(conn, runs.values())


@dataclass(frozen=True)
class Evaluated:
    """One key of one trigger at one tick."""

    watch: MetricWatch
    state: KeyState
    step: Step
    at: datetime


async def evaluate(
    conn: AsyncConnection, watches: Sequence[MetricWatch], now: datetime
) -> list[Evaluated]:
    """Evaluate the enabled metric triggers at the latest tick by `now`, each once per
    tick; the keys' states are written back, what fires or resolves is returned."""
    at = tick_at(now)
    enabled = [w for w in watches if w.automation.enabled]
    if not enabled:
        return []
    await state.lock(conn, [metric_store.trigger_lock(w.id) for w in enabled])
    states = await metric_store.load_states(conn, [w.id for w in enabled])
    done = {tid for (tid, _), s in states.items() if s.evaluated is not None and s.evaluated >= at}
    due = [w for w in enabled if w.id not in done]
    if not due:
        return []
    ranges = {w.id: w.trigger.metric.range for w in due}
    found = await metric_store.aggregates(conn, ranges, at)
    evaluated: list[Evaluated] = []
    changed: list[KeyState] = []
    gone: list[tuple[str, str]] = []
    for watch in due:
        keys = {k for t, k in found if t == watch.id} | {k for t, k in states if t == watch.id}
        for key in sorted(keys):
            current = states.get((watch.id, key)) or KeyState(
                trigger_id=watch.id, key=key, automation_id=watch.automation_id
            )
            runs, total = found.get((watch.id, key), (0, 0.0))
            value = total / runs if runs else None
            result = step(current, watch.trigger.metric, value, runs, at)
            evaluated.append(Evaluated(watch, current, result, at))
            if value is None and current.triggered is None and current.since is None:
                gone.append((watch.id, key))  # nothing left to remember about this key
            else:
                changed.append(current)
    await metric_store.save_states(conn, changed)
    await metric_store.drop_states(conn, gone)
    if at.timestamp() % SWEEP_EVERY.total_seconds() == 0:
        longest = max(w.trigger.metric.range for w in watches)
        await metric_store.sweep(conn, at, longest + TICK)
    return evaluated


def next_due(watches: Sequence[MetricWatch], now: datetime) -> datetime | None:
    """The next tick, while any metric trigger is enabled."""
    if any(w.automation.enabled for w in watches):
        return tick_at(now) + TICK
    return None
