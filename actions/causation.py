"""Causation: events that an automation's firing led to carry a `tripwire-cause` related
resource with the cascade depth, so a chain of automations firing each other is stopped."""

from __future__ import annotations

from uuid import UUID

from events.model import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, Event

CAUSE_ROLE = "tripwire-cause"
DEPTH_LABEL = "tripwire.cascade.depth"


def cascade_depth(event: Event | None) -> int:
    """How many automation firings led to this event (0 for an outside event)."""
    if event is None:
        return 0
    depth = 0
    for resource in event.related:
        if resource.get(RESOURCE_ROLE) == CAUSE_ROLE:
            try:
                depth = max(depth, int(resource.get(DEPTH_LABEL, "0")))
            except ValueError:
                continue
    return depth


def cause(automation_id: UUID, automation_name: str, depth: int) -> dict[str, str]:
    """The related resource that marks an event as caused by an automation's firing."""
    return {
        RESOURCE_ID: f"tripwire.automation.{automation_id}",
        RESOURCE_ROLE: CAUSE_ROLE,
        RESOURCE_NAME: automation_name,
        DEPTH_LABEL: str(depth),
    }
