"""What templates see: Prefect's context names, built from the action request and the
triggering event's labels (no API calls)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from actions.request import ActionRequest
from events.model import ReceivedEvent

PREFECT_KINDS: Final = ("flow-run", "task-run", "flow", "deployment", "work-queue", "work-pool")
STATE_NAME: Final = "prefect.state-name"
STATE_TYPE: Final = "prefect.state-type"


@dataclass(frozen=True)
class RunState:
    """A flow or task run's state as the event labels it: `name` (Late) and `type` (SCHEDULED)."""

    name: str | None
    type: str | None


@dataclass(frozen=True)
class PrefectRef:
    """A Prefect object the event is about or relates to, read from its labels (no API call).

    `{{ flow_run.name }}`, `{{ flow_run.state.type }}`, `{{ deployment.id }}`,
    `{{ work_pool.labels['prefect.work-pool.type'] }}`.
    """

    id: str
    name: str | None
    labels: Mapping[str, str]
    state: RunState | None = None


@dataclass(frozen=True)
class FiringInfo:
    """The firing an action runs for: `{{ firing.state }}` is triggered or resolved."""

    id: UUID
    state: str
    triggered: datetime
    depth: int
    action_index: int


def prefect_ref(event: ReceivedEvent, kind: str) -> PrefectRef | None:
    """The `prefect.<kind>.<id>` resource: the event's own, or the related one in role `kind`."""
    prefix = f"prefect.{kind}."
    for resource in (event.resource, *event.resources_in_role(kind)):
        if not resource.id.startswith(prefix):
            continue
        state = None
        if kind in ("flow-run", "task-run") and (STATE_NAME in resource or STATE_TYPE in resource):
            state = RunState(name=resource.get(STATE_NAME), type=resource.get(STATE_TYPE))
        return PrefectRef(
            id=resource.id.removeprefix(prefix),
            name=resource.name,
            labels=dict(resource),
            state=state,
        )
    return None


def template_context(
    request: ActionRequest, *, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What templates see: automation, event, events, labels, firing, and flow_run, flow,
    deployment, work_queue, work_pool, task_run (None unless the event is about one);
    `sla` for an SLA's actions; `notice` and `alerts` for a notification about alerts;
    `extra` is merged last."""
    event = request.triggering_event
    context: dict[str, Any] = {
        "automation": request.automation,
        "event": event,
        "events": [event] if event is not None else [],
        "labels": dict(request.triggering_labels),
        "firing": FiringInfo(
            id=request.firing_id,
            state=request.state.value,
            triggered=request.triggered,
            depth=request.depth,
            action_index=request.action_index,
        ),
    }
    for kind in PREFECT_KINDS:
        context[kind.replace("-", "_")] = prefect_ref(event, kind) if event is not None else None
    if request.sla is not None:
        context["sla"] = request.sla
    if request.notice is not None:
        context["notice"] = request.notice
        context["alerts"] = request.notice.alerts
    if extra:
        context.update(extra)
    return context
