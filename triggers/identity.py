"""Stable ids for automations and triggers, and fingerprints that tell when a trigger
changed.

An automation's id comes from its name, and a trigger's from the automation's id and the
trigger's place in it (unless the file gives them, as Prefect's exports do), so
re-applying an automation keeps the ids and with them the triggers' in-flight state.
The fingerprint is a hash of what the trigger watches for; state is reset only when it
changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID, uuid5

import orjson

from triggers.automation import Automation
from triggers.model import CompoundTrigger, EventTrigger, MetricTrigger, SequenceTrigger, Trigger

NAMESPACE = UUID("6f1b0c53-5a8e-4a39-9d1e-2b8f3f3d7c11")

Composite = CompoundTrigger | SequenceTrigger


def automation_id(name: str) -> UUID:
    """The id an automation gets when its definition has none."""
    return uuid5(NAMESPACE, f"automation:{name}")


def trigger_id(automation: UUID, path: str) -> UUID:
    """A trigger's id from its automation's id and its place (`trigger.triggers[1]`)."""
    return uuid5(NAMESPACE, f"trigger:{automation}:{path}")


@dataclass(frozen=True)
class Placed:
    """A trigger with its place in the automation and its parent (None at the top)."""

    path: str
    trigger: Trigger
    parent: Composite | None


def walk(
    trigger: Trigger, path: str = "trigger", parent: Composite | None = None
) -> Iterator[Placed]:
    """Every trigger in the tree, parents before children."""
    yield Placed(path, trigger, parent)
    if isinstance(trigger, CompoundTrigger | SequenceTrigger):
        for index, child in enumerate(trigger.triggers):
            yield from walk(child, f"{path}.triggers[{index}]", trigger)


def stamped(automation: Automation) -> Automation:
    """A copy with the automation's and every trigger's id filled in."""
    copy = automation.model_copy(deep=True)
    if copy.id is None:
        copy.id = automation_id(copy.name)
    for placed in walk(copy.trigger):
        if placed.trigger.id is None:
            placed.trigger.id = trigger_id(copy.id, placed.path)
    return copy


def fingerprint(trigger: Trigger) -> str:
    """A hash of what the trigger watches for (ids left out)."""
    data = trigger.model_dump(mode="json", exclude={"id"})
    if isinstance(trigger, CompoundTrigger | SequenceTrigger):
        data["triggers"] = [fingerprint(child) for child in trigger.triggers]
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def trigger_fingerprints(automation: Automation) -> dict[str, str]:
    """Trigger id -> fingerprint, for a stamped automation."""
    return {str(p.trigger.id): fingerprint(p.trigger) for p in walk(automation.trigger)}


def event_triggers(automation: Automation) -> Iterator[tuple[EventTrigger, Composite | None]]:
    """The event triggers (the leaves) with their parents."""
    for placed in walk(automation.trigger):
        if isinstance(placed.trigger, EventTrigger):
            yield placed.trigger, placed.parent


def metric_triggers(automation: Automation) -> Iterator[tuple[MetricTrigger, Composite | None]]:
    """The metric triggers (leaves too) with their parents."""
    for placed in walk(automation.trigger):
        if isinstance(placed.trigger, MetricTrigger):
            yield placed.trigger, placed.parent
