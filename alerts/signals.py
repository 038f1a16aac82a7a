"""What opens, feeds and resolves alerts: the `tripwire.automation.*` and `tripwire.sla.*`
events the engine itself emits, read back from the store in the batch that stores them.

Reading the events, rather than hooking into the firing, keeps alerts out of the trigger
and SLA evaluators and makes them exactly-once the way evaluation is: a stored event is
read once. A malformed one (anyone may post an event by that name) is skipped with a
warning rather than failing the batch it came in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from actions.causation import cascade_depth
from actions.model import Action, grouped
from alerts.model import Labels, fingerprint
from events.model import ReceivedEvent
from sla.model import SLA
from triggers.automation import Automation

log = logging.getLogger("tripwire.alerts")

AUTOMATION_PREFIX = "tripwire.automation."
SLA_PREFIX = "tripwire.sla."
OPENS = {"triggered", "missed", "at-risk"}
RESOLVES = {"resolved", "recovered", "met"}


def automation_labels(
    automation: Automation, key: Mapping[str, str], resource: Mapping[str, Any] | None
) -> Labels:
    """An automation's alert labels: the triggering resource's labels, the for_each key,
    then `automation`, `severity` and `tags` (which win over a resource's own)."""
    labels: Labels = {str(k): str(v) for k, v in (resource or {}).items()}
    labels.update(key)
    labels.update(automation=automation.name, severity=automation.severity)
    if automation.tags:
        labels["tags"] = list(automation.tags)
    return labels


def sla_labels(context: Mapping[str, Any], state: str) -> Labels:
    """An SLA's alert labels, from what its events and actions carry (`sla` in templates):
    the keyed resource's labels, the key, the SLA's own `labels`, then `sla`, `severity`
    and `sla_state`."""
    labels: Labels = {str(k): str(v) for k, v in (context.get("resource") or {}).items()}
    labels.update({str(k): str(v) for k, v in (context.get("key") or {}).items()})
    labels.update({str(k): str(v) for k, v in (context.get("labels") or {}).items()})
    severity = "warning" if state == "at-risk" else str(context.get("severity", "warning"))
    labels.update(sla=str(context["name"]), severity=severity, sla_state=state)
    return labels


def _minute(value: Any) -> str:
    """A deadline as people read it in a message: `2026-12-06 09:00 UTC`."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(value)


def _declares_incident(actions: list[Action]) -> bool:
    return any(a.type == "declare-incident" for a in actions)


def _sent_by_alerts(action: Action, damped: bool) -> bool:
    """Notifications the alerts engine sends: grouped ones and PagerDuty, and every one
    of an automation with `pending_for` (the alert decides whether to tell)."""
    # declare-incident made the alert critical; nothing to send
    return action.type != "declare-incident" and grouped(action, damped)


@dataclass
class Signal:
    """One firing (or resolution) of one source for one key."""

    kind: str  # automation or sla
    source_id: str
    name: str
    key: dict[str, str]
    state: str  # triggered, missed, at-risk; or resolved, recovered, met
    at: datetime
    event_id: str
    firing_id: str
    severity: str
    labels: Labels
    summary: str
    depth: int
    resolve_after: timedelta | None = None
    pending_for: timedelta | None = None
    keep_firing_for: timedelta | None = None
    resource_id: str | None = None  # what the alert is about, for its downstream
    downstream: list[str] = field(default_factory=list)  # declared on the source
    actions: list[Action] = field(default_factory=list)  # the alerts engine's to send

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.kind, self.source_id, self.key)

    @property
    def opens(self) -> bool:
        return self.state in OPENS


@dataclass
class Sources:
    """The loaded automations by id and SLAs by name."""

    automations: Mapping[str, Automation]
    slas: Mapping[str, tuple[str, SLA]]

    def read(self, document: dict[str, Any]) -> Signal | None:
        """The signal in a stored event, or None when it is not one."""
        name = document["event"]
        if not name.startswith((AUTOMATION_PREFIX, SLA_PREFIX)):
            return None
        try:
            if name.startswith(AUTOMATION_PREFIX):
                return self._automation(document, name.removeprefix(AUTOMATION_PREFIX))
            return self._sla(document, name.removeprefix(SLA_PREFIX))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("skipped event %s (%s) for alerts: %r", document.get("id"), name, exc)
            return None

    def _automation(self, document: dict[str, Any], state: str) -> Signal | None:
        if state not in ("triggered", "resolved"):
            return None
        resource_id = document["resource"]["prefect.resource.id"]
        automation = self.automations.get(resource_id.removeprefix(AUTOMATION_PREFIX))
        if automation is None:  # deleted since it fired
            return None
        payload = document["payload"]
        key = {str(k): str(v) for k, v in (payload.get("triggering_labels") or {}).items()}
        event = payload.get("triggering_event")
        resource = (event.get("resource") or {}) if isinstance(event, dict) else {}
        summary = automation.description or automation.name
        if isinstance(event, dict):
            about = resource.get("prefect.resource.name") or resource.get("prefect.resource.id")
            summary = f"{event.get('event')} on {about}"
        chosen = [*automation.actions, *automation.actions_on_trigger]
        severity = "critical" if _declares_incident(chosen) else automation.severity
        damped = automation.pending_for is not None
        return Signal(
            kind="automation",
            source_id=str(automation.id),
            name=automation.name,
            key=key,
            state=state,
            at=datetime.fromisoformat(document["occurred"]),
            event_id=document["id"],
            firing_id=str(payload["firing_id"]),
            severity=severity,
            labels={**automation_labels(automation, key, resource), "severity": severity},
            summary=summary,
            depth=cascade_depth(ReceivedEvent.from_stored(document)),
            resolve_after=automation.resolve_after,
            pending_for=automation.pending_for,
            keep_firing_for=automation.keep_firing_for,
            resource_id=resource.get("prefect.resource.id"),
            downstream=list(automation.downstream),
            actions=[a for a in chosen if _sent_by_alerts(a, damped)],
        )

    def _sla(self, document: dict[str, Any], state: str) -> Signal | None:
        if state not in OPENS | RESOLVES:
            return None
        payload = document["payload"]
        found = self.slas.get(payload["name"])
        if found is None:
            return None
        sla_id, sla = found
        key = {str(k): str(v) for k, v in (payload.get("key") or {}).items()}
        deadline = _minute(payload.get("deadline"))
        if state == "missed":
            chosen = list(sla.actions)
            summary = f"{sla.name} missed its deadline of {deadline}"
        elif state == "at-risk":
            chosen = list(sla.warn_before.actions) if sla.warn_before is not None else []
            summary = f"{sla.name} is at risk of missing its deadline of {deadline}"
        else:
            chosen, summary = [], f"{sla.name} {state}"
        severity = sla.severity if state != "at-risk" else "warning"
        if _declares_incident(chosen):
            severity = "critical"
        return Signal(
            kind="sla",
            source_id=sla_id,
            name=sla.name,
            key=key,
            state=state,
            at=datetime.fromisoformat(document["occurred"]),
            event_id=document["id"],
            firing_id=str(payload["firing_id"]),
            severity=severity,
            labels={**sla_labels(payload, state), "severity": severity},
            summary=summary,
            depth=cascade_depth(ReceivedEvent.from_stored(document)),
            actions=[a for a in chosen if _sent_by_alerts(a, damped=False)],
            resource_id=(payload.get("resource") or {}).get("prefect.resource.id"),
            downstream=list(sla.downstream),
        )
