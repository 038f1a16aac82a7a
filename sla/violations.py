"""`prefect.sla.violation`: what a miss of an SLA made from a Prefect deployment SLA
emits beside `tripwire.sla.missed`, so automations written for Prefect's SLA violations
run unchanged.

Prefect documents the event's name and that it is about the flow run (its automations
select `prefect.flow-run.*`). So the resource is the flow run: the late or overlong one,
or for a frequency SLA the last one that completed. The SLA, the deployment and the flow
are related resources (roles `sla`, `deployment`, `flow`); the payload describes the SLA
as Prefect declares it (`sla`) and what was violated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from actions.causation import cause
from events import clock
from events.model import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, ReceivedEvent
from sla.prefect_slas import FLOW_RUN, RUN_KEY, SEVERITY_LABEL, threshold

if TYPE_CHECKING:
    from sla.firing import Occurrence

EVENT = "prefect.sla.violation"
SLA_RESOURCE = "prefect-cloud.sla"
_DEPLOYMENT_ID, _FLOW_ID, _FLOW_NAME = RUN_KEY[1:]


def _part(resource_id: str | None, name: str | None, role: str) -> dict[str, str] | None:
    if not resource_id:
        return None
    part = {RESOURCE_ID: resource_id, RESOURCE_ROLE: role}
    if name:
        part[RESOURCE_NAME] = name
    return part


def _id(resource_id: str | None) -> str | None:
    """The object's id from its resource id (`prefect.deployment.<id>`)."""
    return resource_id.rpartition(".")[2] if resource_id else None


def violation_event(occurrence: Occurrence) -> ReceivedEvent | None:
    """The `prefect.sla.violation` of a miss, or None when the SLA is not Prefect's."""
    sla = occurrence.sla
    origin = sla.prefect
    if origin is None:
        return None
    key, resource = occurrence.key, occurrence.resource
    run = resource if str(resource.get(RESOURCE_ID, "")).startswith(f"{FLOW_RUN}.") else {}
    deployment_id = key.get(_DEPLOYMENT_ID) or None
    deployment_name = origin.deployment.rpartition("/")[2]
    flow_id, flow_name = key.get(_FLOW_ID) or None, key.get(_FLOW_NAME) or None
    labels = {k: v for k, v in sla.labels.items() if k != SEVERITY_LABEL}
    sla_id = str(uuid5(UUID(occurrence.sla_id), "prefect"))
    described: dict[str, Any] = {
        "id": sla_id,
        "name": origin.name,
        "type": origin.type,
        "severity": origin.severity,
        "enabled": sla.enabled,
        "labels": labels,
        **threshold(sla),
        "owner_resource": deployment_id,
    }
    payload: dict[str, Any] = {
        "sla": described,
        "deployment": {"id": _id(deployment_id), "name": deployment_name},
        "flow": {"id": _id(flow_id), "name": flow_name},
        "flow_run": {"id": _id(run.get(RESOURCE_ID)), "name": run.get(RESOURCE_NAME)},
        "violated_at": occurrence.at.isoformat(),
        "window": {
            "start": occurrence.window_start.isoformat(),
            "end": occurrence.window_end.isoformat(),
        },
        "last_seen": occurrence.last_seen.isoformat() if occurrence.last_seen else None,
        "late": occurrence.late,
        "tripwire_sla": sla.name,
        "firing_id": str(occurrence.id),
    }
    sla_part = {
        RESOURCE_ID: f"{SLA_RESOURCE}.{sla_id}",
        RESOURCE_ROLE: "sla",
        RESOURCE_NAME: origin.name,
        "prefect.sla.type": origin.type,
        "prefect.sla.severity": origin.severity,
    }
    related = [
        sla_part,
        _part(deployment_id, deployment_name, "deployment"),
        _part(flow_id, flow_name, "flow"),
        cause(UUID(occurrence.sla_id), sla.name, occurrence.depth),
    ]
    # Every window of these SLAs is keyed on flow-run events; the deployment stands in
    # should one ever lack its run.
    primary = dict(run) or {RESOURCE_ID: deployment_id or f"prefect.deployment.{deployment_name}"}
    return ReceivedEvent(
        id=uuid5(occurrence.id, EVENT),
        occurred=occurrence.at,
        received=clock.now(),
        event=EVENT,
        resource=primary,
        related=[r for r in related if r is not None],
        payload=payload,
    )
