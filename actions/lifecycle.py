"""The events every action emits: `tripwire.action.triggered`, then `.executed` or
`.failed`, about the action request, so automations can react to failed actions.

Ids derive from the request id (and the retry round), so an outcome published again
after a crash is stored once.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from actions.causation import cause
from actions.request import ActionRequest
from events import clock
from events.model import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, Event

NAMESPACE = UUID("5f0c3c1e-7a52-4f6b-9d1e-3b8e2a6c4d17")


def action_resource(request: ActionRequest) -> dict[str, str]:
    """The resource of lifecycle events: the action request."""
    return {
        RESOURCE_ID: f"tripwire.action.{request.id}",
        RESOURCE_NAME: request.action.type,
        "tripwire.action.type": request.action.type,
        "tripwire.action.index": str(request.action_index),
        "tripwire.firing.id": str(request.firing_id),
        "tripwire.firing.state": request.state.value,
    }


def _related(request: ActionRequest, target: dict[str, str] | None) -> list[dict[str, str]]:
    related = [
        {
            RESOURCE_ID: f"tripwire.automation.{request.automation.id}",
            RESOURCE_ROLE: "automation",
            RESOURCE_NAME: request.automation.name,
        }
    ]
    if request.triggering_event is not None:
        related.append(
            {
                RESOURCE_ID: f"prefect.event.{request.triggering_event.id}",
                RESOURCE_ROLE: "triggering-event",
                RESOURCE_NAME: request.triggering_event.event,
            }
        )
    if target:
        related.append({**target, RESOURCE_ROLE: "target"})
    # The action's own events are one step further down the cascade than its firing.
    related.append(cause(request.automation.id, request.automation.name, request.depth))
    return related


def lifecycle_event(
    request: ActionRequest,
    what: str,
    *,
    round: int = 0,
    payload: dict[str, Any] | None = None,
    target: dict[str, str] | None = None,
) -> Event:
    """`tripwire.action.<what>` for `request`."""
    body = {
        "action_type": request.action.type,
        "action_index": request.action_index,
        "automation": request.automation.name,
        **(payload or {}),
    }
    return Event(
        id=uuid5(NAMESPACE, f"{request.id}:{what}:{round}"),
        occurred=clock.now(),
        event=f"tripwire.action.{what}",
        resource=action_resource(request),
        related=_related(request, target),
        payload=body,
    )
