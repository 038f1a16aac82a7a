"""Prefect's deployment triggers, as Prefect users write them under a deployment's
`triggers:` (in prefect.yaml, or a `deployments:` section), and the automations they
become.

A deployment trigger is one of Prefect's triggers (event, metric, compound, sequence;
`type` may be left out and is told as Prefect tells it) plus the automation's `name`,
`description` and `enabled` and the run's `parameters`, `job_variables` and
`schedule_after`. As `prefect deploy` does, each becomes one automation (`to_automations`)
whose one action runs the deployment, named the trigger's `name` or, without one,
`<deployment>__automation_<n>` (n counting the deployment's triggers from 1). The
automation records the deployment that owns it (`Automation.prefect`), so applying the
deployment again replaces it (sla.store.DeploymentTriggerKind).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from actions.model import RunDeployment
from events.durations import Duration
from events.json_values import JSONObject
from triggers.automation import Automation, PrefectTriggerOrigin
from triggers.model import (
    CompoundTrigger,
    EventTrigger,
    MetricTrigger,
    SequenceTrigger,
    trigger_kind,
)

NAME_LIMIT = 200  # an automation's name


class _DeploymentFields(BaseModel):
    """What a deployment trigger adds to Prefect's trigger: the automation's fields and
    the run's."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=NAME_LIMIT,
        description="The automation's name; default <deployment>__automation_<n>, as "
        "`prefect deploy` names it (n counts the deployment's triggers from 1).",
    )
    description: str = Field(default="", description="The automation's description.")
    enabled: bool = Field(default=True, description="A disabled automation never fires.")
    parameters: JSONObject | None = Field(
        default=None,
        description="The run's parameters (string values are templates); none: the "
        "deployment's defaults.",
    )
    job_variables: JSONObject | None = Field(
        default=None,
        description="The run's job variables; none: the deployment's.",
    )
    schedule_after: Duration = Field(
        default=timedelta(0),
        ge=timedelta(0),
        description="Start the run this much later: seconds, ISO 8601, or like 10m.",
    )

    base: ClassVar[type[BaseModel]]  # the trigger the automation gets


class DeploymentEventTrigger(_DeploymentFields, EventTrigger):
    """An event trigger that runs the deployment."""

    base = EventTrigger


class DeploymentMetricTrigger(_DeploymentFields, MetricTrigger):
    """A metric trigger that runs the deployment."""

    base = MetricTrigger


class DeploymentCompoundTrigger(_DeploymentFields, CompoundTrigger):
    """A compound trigger that runs the deployment."""

    base = CompoundTrigger


class DeploymentSequenceTrigger(_DeploymentFields, SequenceTrigger):
    """A sequence trigger that runs the deployment."""

    base = SequenceTrigger


DeploymentTrigger = Annotated[
    Annotated[DeploymentEventTrigger, Tag("event")]
    | Annotated[DeploymentMetricTrigger, Tag("metric")]
    | Annotated[DeploymentCompoundTrigger, Tag("compound")]
    | Annotated[DeploymentSequenceTrigger, Tag("sequence")],
    Discriminator(trigger_kind),
]
"""One of Prefect's deployment triggers; without `type`, told as Prefect tells it."""


def automation_name(deployment: str, number: int, trigger: _DeploymentFields) -> str:
    """The automation's name: the trigger's, or `<deployment>__automation_<number>` as
    `prefect deploy` names it (`number` counts from 1)."""
    return trigger.name or f"{deployment}__automation_{number}"


def to_automation(deployment: str, number: int, trigger: _DeploymentFields) -> Automation:
    """The automation of the deployment's `number`th trigger (from 1): its trigger, and a
    run-deployment of the deployment with the trigger's parameters, job variables and
    delay."""
    own: Any = trigger.base(**{f: getattr(trigger, f) for f in trigger.base.model_fields})
    run = RunDeployment(
        deployment=deployment,
        parameters=trigger.parameters,
        job_variables=trigger.job_variables,
        schedule_after=trigger.schedule_after,
    )
    return Automation(
        name=automation_name(deployment, number, trigger),
        description=trigger.description,
        enabled=trigger.enabled,
        trigger=own,
        actions=[run],
        prefect=PrefectTriggerOrigin(deployment=deployment, trigger=number),
    )


def to_automations(deployment: str, triggers: Sequence[_DeploymentFields]) -> list[Automation]:
    """The automations of a deployment's triggers, in their order."""
    return [to_automation(deployment, n, t) for n, t in enumerate(triggers, start=1)]
