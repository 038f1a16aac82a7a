"""What a firing hands to the actions stream: one self-contained request per action.

The id is deterministic (firing id + action index), so a request published twice is
deduplicated by JetStream and executed at most once by the ledger.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from actions.model import Action
from events.model import ReceivedEvent


class FiringState(StrEnum):
    """Why the actions run: the trigger fired, or a proactive trigger's condition cleared."""

    triggered = "triggered"
    resolved = "resolved"


class AutomationRef(BaseModel):
    """The automation a request comes from."""

    id: UUID
    name: str


class AlertNotice(BaseModel):
    """What a notification sent by the alerts engine is about: one group of alerts (or one
    alert), with the state the group is in."""

    model_config = ConfigDict(frozen=True)

    status: Literal["firing", "acknowledged", "resolved"] = Field(
        description="firing while any alert in it fires; resolved once all have resolved."
    )
    group: str = Field(description="The group's fingerprint (PagerDuty's dedup_key).")
    labels: dict[str, str] = Field(
        default_factory=dict, description="The grouping labels and their values."
    )
    total: int = Field(description="How many alerts the group holds.")
    firing: int = Field(default=0, description="How many of them fire.")
    alerts: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The first alerts of the group, newest first: fingerprint, name, kind, "
        "state, severity, labels, first_fired, last_fired, count, summary.",
    )


class ActionRequest(BaseModel):
    """One action to run for one firing."""

    model_config = ConfigDict(frozen=True)

    id: UUID = Field(description="Deterministic: firing id + action index; the idempotency key.")
    automation: AutomationRef
    firing_id: UUID
    state: FiringState
    action_index: int
    action: Action
    triggered: datetime = Field(description="When the trigger fired (event time).")
    triggering_labels: dict[str, str] = Field(
        default_factory=dict, description="The for_each labels of the firing."
    )
    triggering_event: ReceivedEvent | None = None
    depth: int = Field(default=1, description="Cascade depth: 1 for a firing on an outside event.")
    sla: dict[str, Any] | None = Field(
        default=None, description="For an SLA's actions: what templates see as `sla`."
    )
    notice: AlertNotice | None = Field(
        default=None, description="For a notification about alerts: the group and its alerts."
    )
