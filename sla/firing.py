"""What an SLA's window produces: a `tripwire.sla.*` event and the action requests that go
with it, with ids derived from the SLA, key, state and deadline, so deciding the same
thing twice (a retried batch, two timer processes) produces the same messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any
from uuid import UUID, uuid5

from actions.causation import cascade_depth, cause
from actions.model import Action, grouped
from actions.request import ActionRequest, AutomationRef, FiringState
from events import clock
from events.model import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, ReceivedEvent
from sla.model import SLA
from sla.violations import violation_event
from triggers.firing import Message, event_message
from triggers.identity import NAMESPACE


class SLAState(StrEnum):
    """What happened to a window."""

    missed = "missed"
    at_risk = "at-risk"
    recovered = "recovered"
    met = "met"


@dataclass(frozen=True)
class Occurrence:
    """One thing an SLA reports about one key."""

    state: SLAState
    sla_id: str
    sla: SLA
    key: dict[str, str]  # the for_each labels
    resource: dict[str, str]  # the keyed resource's labels, as last seen
    deadline: datetime  # the deadline this is about (for recovered: the missed one)
    window_start: datetime
    window_end: datetime  # deadline plus grace
    at: datetime  # event time of the occurrence
    last_seen: datetime | None = None
    event: ReceivedEvent | None = None  # the event behind it (met, recovered)
    late: bool = False  # a miss found after downtime (catch-up)
    skipped: int = 0  # older misses of the same key left out by catch-up

    @cached_property
    def id(self) -> UUID:
        raw = f"sla:{self.sla_id}:{sorted(self.key.items())}:{self.state}:{self.deadline}"
        return uuid5(NAMESPACE, raw)

    @property
    def depth(self) -> int:
        return cascade_depth(self.event) + 1

    def context(self) -> dict[str, Any]:
        """What templates see as `sla`, and the event's payload."""
        sla = self.sla
        return {
            "name": sla.name,
            "kind": sla.kind,
            "severity": sla.severity,
            "description": sla.description,
            "state": self.state.value,
            "deadline": self.deadline.isoformat(),
            "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat()},
            "expected": list(sla.expect),
            "labels": dict(sla.labels),
            "key": self.key,
            "resource": self.resource,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "late": self.late,
            "skipped_misses": self.skipped,
            "firing_id": str(self.id),
        }


def _related(occurrence: Occurrence) -> list[dict[str, str]]:
    related = []
    if RESOURCE_ID in occurrence.resource:
        related.append({**occurrence.resource, RESOURCE_ROLE: "resource"})
    if occurrence.event is not None:
        related.append(
            {
                RESOURCE_ID: f"prefect.event.{occurrence.event.id}",
                RESOURCE_ROLE: "triggering-event",
                RESOURCE_NAME: occurrence.event.event,
            }
        )
    related.append(cause(UUID(occurrence.sla_id), occurrence.sla.name, occurrence.depth))
    return related


def sla_event(occurrence: Occurrence) -> ReceivedEvent:
    """`tripwire.sla.missed`, `.at-risk`, `.recovered` or `.met`, about the SLA."""
    sla = occurrence.sla
    return ReceivedEvent(
        id=uuid5(occurrence.id, "event"),
        occurred=occurrence.at,
        received=clock.now(),
        event=f"tripwire.sla.{occurrence.state.value}",
        resource={
            RESOURCE_ID: f"tripwire.sla.{sla.name}",
            RESOURCE_NAME: sla.name,
            "tripwire.sla.kind": sla.kind,
            "tripwire.sla.severity": sla.severity,
        },
        related=_related(occurrence),
        payload=occurrence.context(),
    )


def _actions(occurrence: Occurrence) -> tuple[list[Action], FiringState]:
    sla = occurrence.sla
    if occurrence.state is SLAState.missed:
        return list(sla.actions), FiringState.triggered
    if occurrence.state is SLAState.at_risk and sla.warn_before is not None:
        return list(sla.warn_before.actions), FiringState.triggered
    if occurrence.state is SLAState.recovered:
        return list(sla.actions_on_resolve), FiringState.resolved
    return [], FiringState.triggered


def messages(occurrence: Occurrence, events_subject: str, actions_subject: str) -> list[Message]:
    """The event (and for a miss of a Prefect deployment SLA, `prefect.sla.violation`),
    then one action request per action."""
    event = sla_event(occurrence)
    out = [event_message(event, events_subject)]
    violation = violation_event(occurrence) if occurrence.state is SLAState.missed else None
    if violation is not None:
        out.append(event_message(violation, events_subject))
    chosen, state = _actions(occurrence)
    context = occurrence.context()
    for index, action in enumerate(chosen):
        if grouped(action):  # the alerts engine sends it, from the alert this opens
            continue
        request = ActionRequest(
            id=uuid5(occurrence.id, f"action:{index}"),
            automation=AutomationRef(id=UUID(occurrence.sla_id), name=occurrence.sla.name),
            firing_id=occurrence.id,
            state=state,
            action_index=index,
            action=action,
            triggered=occurrence.at,
            triggering_labels=occurrence.key,
            triggering_event=occurrence.event,
            depth=occurrence.depth,
            sla=context,
        )
        out.append(Message(request.id, actions_subject, request.model_dump_json().encode()))
    return out
