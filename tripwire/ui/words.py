"""Triggers, durations and times as a person says them: "3 prefect.flow-run.Failed within
10m, per flow", "5 min ago"."""

from __future__ import annotations

from datetime import datetime, timedelta

from events import clock
from triggers.model import (
    CompoundTrigger,
    EventTrigger,
    MetricTrigger,
    Posture,
    SequenceTrigger,
    Trigger,
)

RELATED_PREFIX = "related:"


def duration(value: timedelta) -> str:
    """`timedelta(minutes=90)` → "1h 30m"; whole units only, largest first."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2])


def duration_text(value: timedelta) -> str:
    """A duration as a definitions file takes it, in its largest whole unit: "10m", "2h",
    "90m", "45s"."""
    seconds = value.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """ "5 min ago", "in 3h 2m", "just now"; "never" for None."""
    if moment is None:
        return "never"
    delta = (now or clock.now()) - moment
    if abs(delta) < timedelta(seconds=5):
        return "just now"
    if delta < timedelta(0):
        return f"in {duration(-delta)}"
    return f"{duration(delta)} ago"


def _names(globs: list[str]) -> str:
    if not globs:
        return "any event"
    return " or ".join(globs) if len(globs) <= 3 else f"{', '.join(globs[:3])} or …"


def label_noun(label: str) -> str:
    """A for_each label as a noun: `related:flow:prefect.resource.name` → "flow",
    `prefect.resource.id` → "resource"."""
    if label.startswith(RELATED_PREFIX):
        role = label.removeprefix(RELATED_PREFIX).split(":", 1)[0]
        return role or "related resource"
    if label == "prefect.resource.id":
        return "resource"
    return label


def event_trigger(trigger: EventTrigger) -> str:
    expected = _names(trigger.expect)
    within = duration(trigger.within)
    if trigger.posture is Posture.Proactive:
        text = f"fewer than {trigger.threshold} {expected} within {within}"
        if trigger.after:
            text += f" after {_names(trigger.after)}"
    else:
        count = "" if trigger.threshold == 1 else f"{trigger.threshold} "
        text = f"{count}{expected}"
        if trigger.threshold > 1 and trigger.within:
            text += f" within {within}"
        if trigger.after:
            text += f", after {_names(trigger.after)}"
    if trigger.for_each:
        text += ", per " + " and ".join(label_noun(label) for label in trigger.for_each)
    if trigger.where:
        text += ", where " + trigger.where
    return text


def metric_trigger(trigger: MetricTrigger) -> str:
    query = trigger.metric
    text = (
        f"{query.name.value} {query.operator.value} {query.threshold:g} over "
        f"{duration(query.range)}"
    )
    if query.firing_for:
        text += f" for {duration(query.firing_for)}"
    if trigger.for_each:
        text += ", per " + " and ".join(label_noun(label) for label in trigger.for_each)
    return text


def trigger_words(trigger: Trigger) -> str:
    """The whole trigger in one line."""
    if isinstance(trigger, EventTrigger):
        return event_trigger(trigger)
    if isinstance(trigger, MetricTrigger):
        return metric_trigger(trigger)
    children = "; ".join(trigger_words(child) for child in trigger.triggers)
    if isinstance(trigger, SequenceTrigger):
        text = f"in order: {children}"
        return text + (f", within {duration(trigger.within)}" if trigger.within else "")
    assert isinstance(trigger, CompoundTrigger)
    require = trigger.require
    needed = "any of" if require == "any" else "all of" if require == "all" else f"{require} of"
    text = f"{needed}: {children}"
    return text + (f", within {duration(trigger.within)}" if trigger.within else "")
