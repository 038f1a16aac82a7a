"""Prefect's deployment SLAs, as Prefect users write them, and the tripwire SLAs they
become.

A deployment's `sla:` list (in prefect.yaml, or a `deployments:` section) holds
TimeToCompletion (`duration`), Lateness (`within`) and Frequency (`stale_after`) SLAs;
as in Prefect, the field present tells the kind. Each becomes one tripwire SLA over the
deployment's flow-run events (`to_slas`):

- time to completion: a duration SLA from the run's `Running` to a terminal state;
- lateness: a duration SLA from Prefect marking the run `Late` to its `Running`;
- frequency: a freshness SLA over the deployment's `Completed` runs.

The deployment is matched by the related `prefect.deployment` resource's name, and by the
related flow's name when the name is `flow-name/deployment-name`.

A deployment's `triggers:` list (sla.prefect_triggers) becomes automations that run it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from events.durations import Duration
from events.model import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from sla.model import (
    SLA,
    DurationSLA,
    FreshnessSLA,
    PrefectOrigin,
    PrefectSeverity,
    PrefectSLAType,
)
from sla.prefect_triggers import NAME_LIMIT as AUTOMATION_NAME_LIMIT
from sla.prefect_triggers import DeploymentTrigger, automation_name
from triggers.automation import Severity

# Prefect's five severities onto tripwire's three.
SEVERITIES: dict[PrefectSeverity, Severity] = {
    "minor": "info",
    "low": "info",
    "moderate": "warning",
    "high": "warning",
    "critical": "critical",
}
# The field that tells each kind, as Prefect tells them apart.
KINDS: dict[str, PrefectSLAType] = {
    "duration": "time-to-completion",
    "within": "lateness",
    "stale_after": "frequency",
}
FLOW_RUN = "prefect.flow-run"
TERMINAL = ["Completed", "Failed", "Crashed", "Cancelled"]
# The label on each tripwire SLA's alerts that keeps Prefect's own severity.
SEVERITY_LABEL = "prefect.sla.severity"
# Per flow run, with the deployment and flow it belongs to (for the violation event).
RUN_KEY = [
    RESOURCE_ID,
    f"related:deployment:{RESOURCE_ID}",
    f"related:flow:{RESOURCE_ID}",
    f"related:flow:{RESOURCE_NAME}",
]
DEPLOYMENT_KEY = RUN_KEY[1:]
NAME_LIMIT = 200  # a tripwire SLA's name
RUNNABLE = re.compile(r"^[^/]+(/[^/]+)?$")  # what run-deployment takes as a name


def _longer_than_zero(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0")
    return value


class _PrefectSLA(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Unique per deployment, as in Prefect.")
    severity: PrefectSeverity = Field(
        default="moderate",
        description="minor, low, moderate, high or critical: minor and low are info, "
        "moderate and high warning, critical critical.",
    )
    enabled: bool | None = Field(default=True, description="A disabled SLA is not evaluated.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels the alerts of its violations carry."
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _label_list(cls, value: Any) -> Any:
        # Prefect Cloud's API writes labels as [{label, value}, ...].
        if isinstance(value, list) and all(
            isinstance(v, Mapping) and set(v) == {"label", "value"} for v in value
        ):
            return {str(v["label"]): v["value"] for v in value}
        return value


class TimeToCompletionSla(_PrefectSLA):
    """Violated when a flow run of the deployment runs longer than `duration`."""

    duration: Duration = Field(
        description="The longest a flow run may take, from Running to a terminal state: "
        "seconds, or like 10m."
    )

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        return _longer_than_zero(value)

    @property
    def type(self) -> PrefectSLAType:
        return "time-to-completion"


class LatenessSla(_PrefectSLA):
    """Violated when a flow run of the deployment does not start `within` of its
    scheduled start."""

    within: Duration = Field(
        description="How late a flow run may start: seconds, ISO 8601, or like 10m."
    )

    @field_validator("within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        return _longer_than_zero(value)

    @property
    def type(self) -> PrefectSLAType:
        return "lateness"


class FrequencySla(_PrefectSLA):
    """Violated when no flow run of the deployment completes within `stale_after` of
    the previous one."""

    stale_after: Duration = Field(
        description="The longest gap between completed flow runs: seconds, ISO 8601, or like 1h."
    )

    @field_validator("stale_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        return _longer_than_zero(value)

    @property
    def type(self) -> PrefectSLAType:
        return "frequency"


def _one_kind(value: Any) -> Any:
    """Name the field when none or several of the kinds' fields are given."""
    if not isinstance(value, Mapping | _PrefectSLA):
        raise ValueError("must be a mapping: name and one of duration, within or stale_after")
    if isinstance(value, Mapping):
        given = [f for f in KINDS if f in value]
        if not given:
            raise ValueError(
                "needs one of duration (a time-to-completion SLA), within (lateness) or "
                "stale_after (frequency)"
            )
        if len(given) > 1:
            raise ValueError(
                f"gives both {given[0]} and {given[1]}; a Prefect SLA is one kind: duration "
                "(time to completion), within (lateness) or stale_after (frequency)"
            )
    return value


def _tag(value: Any) -> str | None:
    # Tagged by class name: a tag that is no key leaves error paths as the file has them.
    if isinstance(value, Mapping):
        field = next((f for f in KINDS if f in value), None)
        return _CLASSES[field].__name__ if field is not None else None
    return type(value).__name__ if isinstance(value, _PrefectSLA) else None


_CLASSES: dict[str, type[_PrefectSLA]] = {
    "duration": TimeToCompletionSla,
    "within": LatenessSla,
    "stale_after": FrequencySla,
}
PrefectSLA = Annotated[
    Annotated[TimeToCompletionSla, Tag("TimeToCompletionSla")]
    | Annotated[LatenessSla, Tag("LatenessSla")]
    | Annotated[FrequencySla, Tag("FrequencySla")],
    Discriminator(_tag),
    BeforeValidator(_one_kind),
]
"""One of Prefect's deployment SLAs, told apart by its field."""


class PrefectDeployment(BaseModel):
    """A deployment with its SLAs and triggers, as prefect.yaml lists deployments: the
    other keys of a prefect.yaml entry (entrypoint, work_pool, schedules ...) are
    Prefect's and ignored."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(
        min_length=1,
        max_length=200,
        description="flow-name/deployment-name, or the deployment's name alone (as in "
        "prefect.yaml: then any flow's deployment of that name).",
    )
    sla: list[PrefectSLA] | None = Field(
        default=None,
        description="The deployment's SLAs; apply replaces the ones it had (created, "
        "updated, deleted). [] deletes them all; left out, they are left alone.",
    )
    triggers: list[DeploymentTrigger] | None = Field(
        default=None,
        description="Prefect's deployment triggers: each becomes an automation that runs "
        "the deployment; apply replaces the ones it had. [] deletes them all; left out, "
        "they are left alone.",
    )

    @model_validator(mode="before")
    @classmethod
    def _spelling(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "slas" in data and "sla" not in data:
            raise ValueError("slas is not Prefect's key; a deployment's SLAs are under sla:")
        return data

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for sla in self.sla or []:
            if sla.name in seen:
                raise ValueError(
                    f"two SLAs are named {sla.name!r}; names are unique per deployment"
                )
            seen.add(sla.name)
            if len(sla_name(self.name, sla.name)) > NAME_LIMIT:
                raise ValueError(
                    f"the deployment's and the SLA {sla.name!r}'s names are longer than "
                    f"{NAME_LIMIT - 1} characters together"
                )
        return self

    @model_validator(mode="after")
    def _runnable(self) -> Self:
        if self.triggers and not RUNNABLE.match(self.name):
            raise ValueError(
                "a deployment with triggers is run by name: name it deployment-name or "
                "flow-name/deployment-name"
            )
        seen: dict[str, int] = {}
        for number, trigger in enumerate(self.triggers or [], start=1):
            name = automation_name(self.name, number, trigger)
            if name in seen:
                raise ValueError(
                    f"triggers[{seen[name] - 1}] and triggers[{number - 1}] are both the "
                    f"automation {name!r}; automation names are unique"
                )
            seen[name] = number
            if len(name) > AUTOMATION_NAME_LIMIT:
                raise ValueError(
                    f"triggers[{number - 1}]'s automation name {name!r} is longer than "
                    f"{AUTOMATION_NAME_LIMIT} characters; give the trigger a shorter name"
                )
        return self

    @property
    def flow(self) -> str | None:
        """The flow's name, when the name gives one."""
        return self.name.rpartition("/")[0] or None

    @property
    def deployment(self) -> str:
        """The deployment's own name."""
        return self.name.rpartition("/")[2]


def sla_name(deployment: str, sla: str) -> str:
    """The tripwire SLA's name: the deployment's, then the SLA's."""
    return f"{deployment}:{sla}"


def to_sla(deployment: PrefectDeployment, sla: PrefectSLA) -> SLA:
    """The tripwire SLA a Prefect deployment SLA becomes."""
    related: list[dict[str, str | list[str]]] = [
        {RESOURCE_ROLE: "deployment", RESOURCE_NAME: deployment.deployment}
    ]
    if deployment.flow is not None:
        related.append({RESOURCE_ROLE: "flow", RESOURCE_NAME: deployment.flow})
    common: dict[str, Any] = {
        "name": sla_name(deployment.name, sla.name),
        "description": f"Prefect {sla.type} SLA {sla.name!r} of deployment {deployment.name}",
        "severity": SEVERITIES[sla.severity],
        "enabled": sla.enabled is not False,
        "labels": {**sla.labels, SEVERITY_LABEL: sla.severity},
        "prefect": PrefectOrigin(
            deployment=deployment.name, type=sla.type, name=sla.name, severity=sla.severity
        ),
        "match": {RESOURCE_ID: f"{FLOW_RUN}.*"},
        "match_related": related,
    }
    if isinstance(sla, FrequencySla):
        return FreshnessSLA(
            **common,
            kind="freshness",
            expect=[f"{FLOW_RUN}.Completed"],
            every=sla.stale_after,
            for_each=DEPLOYMENT_KEY,
        )
    if isinstance(sla, LatenessSla):
        start, expect, within = ["Late"], ["Running", *TERMINAL], sla.within
    else:
        start, expect, within = ["Running"], TERMINAL, sla.duration
    return DurationSLA(
        **common,
        kind="duration",
        start=[f"{FLOW_RUN}.{s}" for s in start],
        expect=[f"{FLOW_RUN}.{e}" for e in expect],
        within=within,
        for_each=RUN_KEY,
    )


def to_slas(deployment: PrefectDeployment) -> list[SLA]:
    """The tripwire SLAs of a deployment's Prefect SLAs, in their order."""
    return [to_sla(deployment, sla) for sla in deployment.sla or []]


def threshold(sla: SLA) -> dict[str, float]:
    """The Prefect SLA's own field and value, in seconds, from the SLA it became."""
    origin = sla.prefect
    if origin is None:
        return {}
    if isinstance(sla, FreshnessSLA):
        return {"stale_after": sla.every.total_seconds()}
    assert isinstance(sla, DurationSLA)
    field = "within" if origin.type == "lateness" else "duration"
    return {field: sla.within.total_seconds()}
