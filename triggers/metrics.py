"""Prefect's flow-run metrics, computed from flow-run state events. Pure functions over
plain objects: no I/O, no state.

A metric trigger keeps, per flow run it matches, the state changes its metric needs
(`RunProgress`). A run gives one sample once it has them, counted at an instant of event
time:

- `duration`: seconds from its latest Running to its terminal state (Completed, Failed,
  Crashed, Cancelled), counted when it ended;
- `lateness`: seconds from entering Late to its first Running (or Crashed, if it never
  ran), counted when it started; only runs Prefect marked Late count, as in Prefect;
- `successes`: 1 when its latest terminal state is Completed, else 0, counted when it ended.

The metric at a tick is the mean of the samples counted in the range before it: the
average duration or lateness, and for successes the share of finished runs that
completed. A range without samples has no value, and a trigger with no value changes
nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from triggers.model import MetricName, MetricOperator, MetricQuery
from triggers.results import span_text

FLOW_RUN = "prefect.flow-run."  # the prefix of the events and of the runs' resource ids
STATE_TYPE = "prefect.state-type"
TERMINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
TICK = timedelta(seconds=10)  # how often metric triggers are evaluated
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class StateChange:
    """What one flow-run event says: which run, which state, when."""

    run: str
    name: str  # the state's name: Running, Late, Completed, TimedOut ...
    kind: str  # the state's type: RUNNING, SCHEDULED, COMPLETED ...
    occurred: datetime


def state_change(document: Mapping[str, Any]) -> StateChange | None:
    """The state change an event (as JSON) reports, or None for other events (task runs,
    heartbeats)."""
    name: str = document["event"]
    resource = document["resource"]
    run = resource.get("prefect.resource.id", "")
    if not name.startswith(FLOW_RUN) or not run.startswith(FLOW_RUN):
        return None
    state = name[len(FLOW_RUN) :]
    kind = resource.get(STATE_TYPE) or state.upper()
    if state == "heartbeat" or "." in state:
        return None
    occurred = document["occurred"]
    if isinstance(occurred, str):
        occurred = datetime.fromisoformat(occurred)
    return StateChange(run, state, kind, occurred)


@dataclass(kw_only=True)
class RunProgress:
    """One flow run as one metric trigger knows it (a `metric_runs` row)."""

    trigger_id: str
    run: str
    automation_id: str
    key: str
    late: datetime | None = None
    started: datetime | None = None
    running: datetime | None = None
    ended: datetime | None = None
    outcome: str | None = None
    at: datetime | None = None
    value: float | None = None
    touched: datetime | None = None

    @property
    def ident(self) -> tuple[str, str]:
        return (self.trigger_id, self.run)


def observe(progress: RunProgress, change: StateChange, metric: MetricName) -> None:
    """Take in one state change (in any order) and update the run's sample."""
    when = change.occurred
    progress.touched = when if progress.touched is None else max(progress.touched, when)
    if change.name == "Late":
        progress.late = when if progress.late is None else min(progress.late, when)
    elif change.kind == "RUNNING":
        progress.started = when if progress.started is None else min(progress.started, when)
        progress.running = when if progress.running is None else max(progress.running, when)
    elif change.kind in TERMINAL and (progress.ended is None or when >= progress.ended):
        progress.ended, progress.outcome = when, change.kind
    sample = _sample(progress, metric)
    # A run that runs again after it ended keeps its sample until it ends again: its
    # latest terminal state is what counts, as in Prefect.
    if sample is not None:
        progress.at, progress.value = sample


def _sample(progress: RunProgress, metric: MetricName) -> tuple[datetime, float] | None:
    ended = progress.ended
    if metric is MetricName.successes:
        return None if ended is None else (ended, 1.0 if progress.outcome == "COMPLETED" else 0.0)
    if metric is MetricName.duration:
        running = progress.running
        if ended is None or running is None or running > ended:
            return None
        return ended, (ended - running).total_seconds()
    late = progress.late
    begun = progress.started
    if begun is None and progress.outcome == "CRASHED":
        begun = ended
    if late is None or begun is None or begun < late:
        return None
    return begun, (begun - late).total_seconds()


def holds(query: MetricQuery, value: float) -> bool:
    """value OPERATOR threshold."""
    threshold = query.threshold
    match query.operator:
        case MetricOperator.lt:
            return value < threshold
        case MetricOperator.lte:
            return value <= threshold
        case MetricOperator.gt:
            return value > threshold
        case MetricOperator.gte:
            return value >= threshold


def tick_at(now: datetime) -> datetime:
    """The latest evaluation instant at or before `now` (multiples of TICK since the
    epoch, so live and replayed evaluations fall on the same instants)."""
    ticks = math.floor((now - EPOCH) / TICK)
    return EPOCH + ticks * TICK


def next_tick(now: datetime) -> datetime:
    """The first evaluation instant after `now`."""
    return tick_at(now) + TICK


@dataclass(kw_only=True)
class KeyState:
    """Where one metric trigger stands for one key (a `metric_states` row)."""

    trigger_id: str
    key: str
    automation_id: str
    since: datetime | None = None
    triggered: datetime | None = None
    value: float | None = None
    runs: int = 0
    evaluated: datetime | None = None


@dataclass(frozen=True)
class Step:
    """One evaluation of one key: what changed, and why in words."""

    change: str | None  # "fire", "resolve" or None
    reason: str


def step(
    state: KeyState, query: MetricQuery, value: float | None, runs: int, now: datetime
) -> Step:
    """Evaluate one key at `now` with the metric's `value` over the range, and move its
    state: the condition must hold (or, once firing, fail) without a break for
    `firing_for` before the trigger fires (or resolves). No value changes nothing."""
    state.evaluated = now
    state.value, state.runs = value, runs
    if value is None:
        return Step(None, f"no runs in the last {span_text(query.range)}: no value, no change")
    measured = measure_text(query, value, runs)
    met = holds(query, value)
    firing = state.triggered is not None
    if met != firing:
        if state.since is None:
            state.since = now
        held = now - state.since
        if held >= query.firing_for:
            state.since = None
            if firing:
                state.triggered = None
                return Step("resolve", f"{measured}: false for {span_text(held)}")
            state.triggered = now
            return Step("fire", f"{measured}: true for {span_text(held)}")
        wanted = "true" if met else "false"
        return Step(
            None,
            f"{measured}: {wanted} for {span_text(held)} of {span_text(query.firing_for)}",
        )
    state.since = None
    return Step(None, f"{measured}: {'true, firing' if firing else 'false'}")


def measure_text(query: MetricQuery, value: float, runs: int) -> str:
    """The value against the threshold, in words: `duration 42.5s > 30s over 5m (3 runs)`."""
    name = query.name.value
    shown, threshold = _shown(query.name, value), _shown(query.name, query.threshold)
    plural = "run" if runs == 1 else "runs"
    return (
        f"{name} {shown} {query.operator.value} {threshold} over {span_text(query.range)} "
        f"({runs} {plural})"
    )


def _shown(name: MetricName, value: float) -> str:
    if name is MetricName.successes:
        return f"{value:.3g}"
    return f"{value:.3g}s" if value < 100 else f"{value:.0f}s"
