"""What the alerts engine publishes: `tripwire.alert.*` events and the notification
requests of its groups, with ids derived from what they are about, so deciding the same
thing twice produces the same messages (JetStream and the ledger drop the copies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from pydantic import TypeAdapter

from actions.causation import cause
from actions.model import CHECKED, Action
from actions.request import ActionRequest, AlertNotice, AutomationRef, FiringState
from alerts.groups import Group, Notice
from alerts.model import Alert
from events import clock
from events.model import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, ReceivedEvent
from triggers.identity import NAMESPACE

ACTION: TypeAdapter[Action] = TypeAdapter(Action)


def alert_event(
    alert: Alert, what: str, at: datetime, depth: int = 0, extra: dict[str, Any] | None = None
) -> ReceivedEvent:
    """`tripwire.alert.opened`, `.acknowledged`, `.resolved` or `.silenced`, about the
    alert; `extra` joins its payload (what silences it)."""
    source = (
        f"tripwire.{alert.kind}.{alert.source_id if alert.kind == 'automation' else alert.name}"
    )
    return ReceivedEvent(
        id=uuid5(NAMESPACE, f"alert:{alert.id}:{what}:{alert.count}:{at.isoformat()}"),
        occurred=at,
        received=clock.now(),
        event=f"tripwire.alert.{what}",
        resource={
            RESOURCE_ID: f"tripwire.alert.{alert.fingerprint}",
            RESOURCE_NAME: alert.name,
            "tripwire.alert.kind": alert.kind,
            "tripwire.alert.severity": alert.severity,
        },
        related=[
            {RESOURCE_ID: source, RESOURCE_ROLE: alert.kind, RESOURCE_NAME: alert.name},
            cause(UUID(alert.source_id), alert.name, depth),
        ],
        payload={**alert.as_json(), **(extra or {})},
    )


def notice_request(group: Group, notice: Notice, now: datetime) -> ActionRequest:
    """The request that sends one notice of a group (its sequence number makes the id)."""
    request_id = uuid5(NAMESPACE, f"alert-group:{group.id}:{group.sequence}")
    resolved = notice.status == "resolved"
    return ActionRequest(
        id=request_id,
        automation=AutomationRef(id=UUID(group.source_id), name=group.source_name),
        firing_id=request_id,
        state=FiringState.resolved if resolved else FiringState.triggered,
        action_index=0,
        action=parse_action(group.action),
        triggered=now,
        triggering_labels=group.labels,
        notice=AlertNotice(
            status=notice.status,
            group=group.id[:32],
            labels=group.labels,
            total=notice.total,
            firing=notice.firing,
            alerts=[a.brief() for a in notice.shown],
        ),
    )


def parse_action(stored: dict[str, Any]) -> Action:
    """An action as a group stores it (validated when its automation was applied)."""
    return ACTION.validate_python(stored, context={CHECKED: True})
