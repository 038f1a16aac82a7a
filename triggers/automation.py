"""An automation: a trigger plus actions, in Prefect's shape."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from actions.model import Action
from events.durations import Duration
from triggers.model import Trigger

Severity = Literal["info", "warning", "critical"]


class PrefectTriggerOrigin(BaseModel):
    """The Prefect deployment trigger an automation was made from (a deployment's
    `triggers:` in prefect.yaml or a `deployments:` section): the deployment owns it, and
    applying the deployment again replaces it."""

    model_config = ConfigDict(extra="forbid")

    deployment: str = Field(
        min_length=1,
        description="The owning deployment: flow-name/deployment-name, or the "
        "deployment's name alone (as in prefect.yaml).",
    )
    trigger: int = Field(ge=1, description="Its place in the deployment's triggers, from 1.")


class Automation(BaseModel):
    """What to watch for and what to do; Prefect's exported automations load unchanged."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique; apply updates by name.")
    description: str = Field(default="", description="What it is for.")
    enabled: bool = Field(default=True, description="A disabled automation never fires.")
    tags: list[str] = Field(default_factory=list, description="Free-form tags.")
    trigger: Trigger = Field(description="When it fires.")
    actions: list[Action] = Field(default_factory=list, description="Run when it fires.")
    actions_on_trigger: list[Action] = Field(
        default_factory=list, description="Also run when it fires (Prefect's name)."
    )
    actions_on_resolve: list[Action] = Field(
        default_factory=list, description="Run when a proactive trigger's condition clears."
    )
    severity: Severity = Field(
        default="warning", description="tripwire: the severity of the alerts it opens."
    )
    resolve_after: Duration | None = Field(
        default=None,
        gt=timedelta(0),
        description="tripwire: resolve its alert after this long without a new firing "
        "(reactive triggers; proactive and compound ones resolve when their trigger does). "
        "Unset: the alert stays open until its trigger resolves or someone resolves it.",
    )
    pending_for: Duration | None = Field(
        default=None,
        gt=timedelta(0),
        description="tripwire: notify about its alert only if still open this long after it "
        "opened (flap damping); its notification actions go through the alerts engine.",
    )
    keep_firing_for: Duration | None = Field(
        default=None,
        gt=timedelta(0),
        description="tripwire: keep its alert firing this long after the trigger resolves; "
        "a firing meanwhile keeps it open.",
    )
    downstream: list[str] = Field(
        default_factory=list,
        description="tripwire: what depends on what it watches (dataflows, dashboards, "
        "models), named in its alerts beside what Prefect's asset lineage shows.",
    )
    owner_resource: str | None = Field(default=None, description="Prefect: who owns it.")
    prefect: PrefectTriggerOrigin | None = Field(
        default=None,
        description="tripwire: set by apply on the automation of a Prefect deployment's "
        "trigger, naming the deployment that owns it; not written by hand.",
    )
    id: UUID | None = Field(default=None, description="Prefect's id, kept when given.")
