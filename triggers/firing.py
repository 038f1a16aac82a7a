"""What a firing produces: the `tripwire.automation.*` event and one action request per
action, with ids derived from the firing's id so a retried batch produces the same ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from actions.causation import cascade_depth, cause
from actions.model import grouped
from actions.request import ActionRequest, AutomationRef, FiringState
from events import clock
from events.keys import keyed
from events.model import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, ReceivedEvent
from triggers.automation import Automation
from triggers.identity import NAMESPACE


def firing_id(*parts: object) -> UUID:
    """A deterministic firing id from what makes the firing unique."""
    return uuid5(NAMESPACE, ":".join(str(p) for p in parts))


@dataclass
class Firing:
    """A trigger fired (or a proactive trigger's condition cleared)."""

    id: UUID
    trigger_id: str
    automation: Automation
    triggered: datetime
    state: FiringState = FiringState.triggered
    labels: dict[str, str] = field(default_factory=dict)
    event: ReceivedEvent | None = None
    why: str = ""  # in words, e.g. "3 of 3 events within 10m"

    @property
    def depth(self) -> int:
        """This firing's place in a cascade: one more than its triggering event's."""
        return cascade_depth(self.event) + 1


@dataclass(frozen=True)
class Message:
    """A message for the bus, decided in a transaction and published after it."""

    id: UUID
    subject: str
    body: bytes


def event_message(event: ReceivedEvent, events_subject: str) -> Message:
    """An event for the outbox, published under its key like any ingested event."""
    subject = keyed(events_subject, event.resource.id)
    return Message(event.id, subject, event.model_dump_json().encode())


def _automation_resource(automation: Automation) -> dict[str, str]:
    return {
        RESOURCE_ID: f"tripwire.automation.{automation.id}",
        RESOURCE_NAME: automation.name,
    }


def _related(firing: Firing) -> list[dict[str, str]]:
    assert firing.automation.id is not None
    related = [cause(firing.automation.id, firing.automation.name, firing.depth)]
    if firing.event is not None:
        related.insert(
            0,
            {
                RESOURCE_ID: f"prefect.event.{firing.event.id}",
                RESOURCE_ROLE: "triggering-event",
                RESOURCE_NAME: firing.event.event,
            },
        )
    return related


def state_event(firing: Firing) -> ReceivedEvent:
    """`tripwire.automation.triggered` or `.resolved`, about the automation."""
    payload: dict[str, Any] = {
        "firing_id": str(firing.id),
        "trigger_id": firing.trigger_id,
        "triggering_labels": firing.labels,
        "triggering_event": (
            firing.event.model_dump(mode="json") if firing.event is not None else None
        ),
    }
    return ReceivedEvent(
        id=firing_id(firing.id, "event"),
        occurred=firing.triggered,
        received=clock.now(),
        event=f"tripwire.automation.{firing.state.value}",
        resource=_automation_resource(firing.automation),
        related=_related(firing),
        payload=payload,
    )


def loop_event(firing: Firing, limit: int) -> ReceivedEvent:
    """`tripwire.automation.loop-detected`: the cascade went deeper than `limit`."""
    return ReceivedEvent(
        id=firing_id(firing.id, "loop"),
        occurred=firing.triggered,
        received=clock.now(),
        event="tripwire.automation.loop-detected",
        resource=_automation_resource(firing.automation),
        related=_related(firing),
        payload={"depth": firing.depth, "limit": limit, "firing_id": str(firing.id)},
    )


def action_requests(firing: Firing) -> list[ActionRequest]:
    """One request per action: `actions` and `actions_on_trigger` when it fired,
    `actions_on_resolve` when it resolved. Grouped notifications are left to the alerts
    engine, which sends them from the alert this firing opens or updates; their index is
    kept, so request ids do not move when a grouping is added or removed. With
    `pending_for`, every notification goes through the alert."""
    automation = firing.automation
    if firing.state is FiringState.triggered:
        chosen = [*automation.actions, *automation.actions_on_trigger]
    else:
        chosen = list(automation.actions_on_resolve)
    assert automation.id is not None
    ref = AutomationRef(id=automation.id, name=automation.name)
    damped = automation.pending_for is not None  # its alert decides whether to notify
    return [
        ActionRequest(
            id=firing_id(firing.id, "action", index),
            automation=ref,
            firing_id=firing.id,
            state=firing.state,
            action_index=index,
            action=action,
            triggered=firing.triggered,
            triggering_labels=firing.labels,
            triggering_event=firing.event,
            depth=firing.depth,
        )
        for index, action in enumerate(chosen)
        if not grouped(action, damped)
    ]
