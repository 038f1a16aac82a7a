"""Actions an automation runs, a discriminated union on `type`.

Prefect's action names and fields are kept, so Prefect's exported automations load
unchanged; tripwire adds targets by name, Slack, any Apprise URL and plain webhooks.
String fields marked "template" are Jinja templates rendered when the action runs; each
class lists them in `template_fields`, and they are parsed when the model validates, so a
file or API body with a broken template is refused naming the field and the line.
Execution (executors, retries, the ledger) is built on these models.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from events.durations import Duration
from events.json_values import JSONObject
from events.templating import parse_error

Source = Literal["selected", "inferred"]


CHECKED = "templates_checked"  # validation context key: skip parsing templates again


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retries: int | None = Field(
        default=None, ge=0, le=1000, description="Attempts after the first; default from settings."
    )
    retry_delay: Duration | None = Field(
        default=None, description="First backoff delay (doubles, with jitter)."
    )
    # Fields that hold templates (every string inside, for dicts and lists).
    template_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _templates_parse(self, info: ValidationInfo) -> Self:
        if info.context and info.context.get(CHECKED):
            return self  # read back from the bus: checked when it was applied
        fields = type(self).model_fields
        problems = [
            f"{where}: template {error}"
            for name in self.template_fields
            for where, source in _strings(getattr(self, name), fields[name].alias or name)
            if (error := parse_error(source)) is not None
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string inside `value`, with its path as render_value names it."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


class Grouping(BaseModel):
    """How a notification action batches alerts: one message per group of alerts that
    share the values of the `by` labels, sent by the alerts engine instead of once per
    firing."""

    model_config = ConfigDict(extra="forbid")

    by: list[str] = Field(
        default_factory=list,
        description="Alert labels whose values split the groups, e.g. automation, sla, "
        "severity or any label of the triggering resource; empty: one group.",
    )
    wait: Duration = Field(
        default=timedelta(seconds=30),
        ge=timedelta(0),
        description="Wait this long after a group's first alert, to gather the rest.",
    )
    interval: Duration = Field(
        default=timedelta(minutes=5),
        gt=timedelta(0),
        description="Send changes to a group (alerts added or resolved) at most this often.",
    )
    repeat: Duration = Field(
        default=timedelta(hours=4),
        gt=timedelta(0),
        description="Send a still-firing group again after this long, unless acknowledged.",
    )
    send_resolved: bool = Field(
        default=True, description="Send a resolved notice when the whole group has resolved."
    )


def _grouping() -> Any:
    return Field(
        default=None,
        description="tripwire: batch alerts into one message per group instead of one per "
        "firing (see Alerts).",
    )


class DoNothing(_Action):
    """Record the firing and do nothing else."""

    type: Literal["do-nothing"] = "do-nothing"


class _Targeted(_Action):
    """An action on one Prefect object: selected by id or name, or inferred from the event."""

    source: Source = Field(
        default="selected",
        description="selected: the object named here; inferred: the one the event is about.",
    )
    _target: ClassVar[str] = ""  # the object kind, for messages
    _by_id: ClassVar[str] = ""
    _by_name: ClassVar[str] = ""

    @model_validator(mode="after")
    def _one_target(self) -> _Targeted:
        given = [f for f in (self._by_id, self._by_name) if f and getattr(self, f) is not None]
        if self.source == "inferred" and given:
            raise ValueError(
                f"source is inferred, so {given[0]} must not be set: the {self._target} comes "
                "from the triggering event (or set source: selected)"
            )
        if self.source == "selected" and len(given) != 1:
            options = " or ".join(f for f in (self._by_id, self._by_name) if f)
            raise ValueError(
                f"source is selected, so set exactly one of {options} "
                f"(or source: inferred to take the {self._target} from the event)"
            )
        return self


class _DeploymentAction(_Targeted):
    _target: ClassVar[str] = "deployment"
    _by_id: ClassVar[str] = "deployment_id"
    _by_name: ClassVar[str] = "deployment"

    deployment_id: UUID | None = Field(default=None, description="The deployment's id.")
    deployment: str | None = Field(
        default=None,
        pattern=r"^[^/]+(/[^/]+)?$",
        description="tripwire: the deployment by name, as flow-name/deployment-name, or "
        "the deployment's name alone when one flow has a deployment of that name.",
    )
    connection: str | None = Field(
        default=None, description="tripwire: a named Prefect connection (default: settings)."
    )


class RunDeployment(_DeploymentAction):
    """Create a flow run of a deployment."""

    type: Literal["run-deployment"] = "run-deployment"
    template_fields: ClassVar[tuple[str, ...]] = ("parameters",)
    parameters: JSONObject | None = Field(
        default=None, description="Flow parameters; string values are templates, JSON types kept."
    )
    job_variables: JSONObject | None = Field(
        default=None, description="Job variables for the run's infrastructure."
    )
    schedule_after: Duration = Field(
        default=timedelta(0), ge=timedelta(0), description="Start the run this much later."
    )
    tags: list[str] = Field(default_factory=list, description="tripwire: tags for the run.")


class PauseDeployment(_DeploymentAction):
    """Pause a deployment's schedules."""

    type: Literal["pause-deployment"] = "pause-deployment"


class ResumeDeployment(_DeploymentAction):
    """Resume a deployment's schedules."""

    type: Literal["resume-deployment"] = "resume-deployment"


class _WorkQueueAction(_Targeted):
    _target: ClassVar[str] = "work queue"
    _by_id: ClassVar[str] = "work_queue_id"
    _by_name: ClassVar[str] = "work_queue_name"

    work_queue_id: UUID | None = Field(default=None, description="The work queue's id.")
    work_queue_name: str | None = Field(
        default=None, description="tripwire: the work queue by name."
    )
    work_pool_name: str | None = Field(
        default=None, description="tripwire: the pool of a queue given by name."
    )
    connection: str | None = Field(default=None, description="tripwire: a named connection.")


class PauseWorkQueue(_WorkQueueAction):
    """Pause a work queue."""

    type: Literal["pause-work-queue"] = "pause-work-queue"


class ResumeWorkQueue(_WorkQueueAction):
    """Resume a work queue."""

    type: Literal["resume-work-queue"] = "resume-work-queue"


class _WorkPoolAction(_Targeted):
    _target: ClassVar[str] = "work pool"
    _by_id: ClassVar[str] = "work_pool_id"
    _by_name: ClassVar[str] = "work_pool_name"

    work_pool_id: UUID | None = Field(default=None, description="The work pool's id.")
    work_pool_name: str | None = Field(default=None, description="tripwire: the pool by name.")
    connection: str | None = Field(default=None, description="tripwire: a named connection.")


class PauseWorkPool(_WorkPoolAction):
    """Pause a work pool."""

    type: Literal["pause-work-pool"] = "pause-work-pool"


class ResumeWorkPool(_WorkPoolAction):
    """Resume a work pool."""

    type: Literal["resume-work-pool"] = "resume-work-pool"


class _FlowRunAction(_Action):
    # Always the flow run the triggering event is about, as in Prefect.
    connection: str | None = Field(default=None, description="tripwire: a named connection.")


class CancelFlowRun(_FlowRunAction):
    """Cancel the flow run the event is about."""

    type: Literal["cancel-flow-run"] = "cancel-flow-run"


class SuspendFlowRun(_FlowRunAction):
    """Suspend the flow run the event is about."""

    type: Literal["suspend-flow-run"] = "suspend-flow-run"


class ResumeFlowRun(_FlowRunAction):
    """Resume the (suspended or paused) flow run the event is about."""

    type: Literal["resume-flow-run"] = "resume-flow-run"


class DeleteFlowRun(_FlowRunAction):
    """Delete the flow run the event is about."""

    type: Literal["delete-flow-run"] = "delete-flow-run"


class StateType(StrEnum):
    """Prefect's state types."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"


class ChangeFlowRunState(_FlowRunAction):
    """Move the flow run the event is about to another state."""

    type: Literal["change-flow-run-state"] = "change-flow-run-state"
    template_fields: ClassVar[tuple[str, ...]] = ("message",)
    name: str | None = Field(default=None, description="The state's name (default: its type).")
    state: StateType = Field(description="The state type to move to.")
    message: str | None = Field(default=None, description="Why (template).")
    force: bool = Field(default=False, description="Skip Prefect's orchestration rules.")


class _AutomationAction(_Targeted):
    _target: ClassVar[str] = "automation"
    _by_id: ClassVar[str] = "automation_id"
    _by_name: ClassVar[str] = "automation"

    automation_id: UUID | None = Field(default=None, description="The automation's id.")
    automation: str | None = Field(default=None, description="tripwire: the automation by name.")


class PauseAutomation(_AutomationAction):
    """Pause an automation (inferred: this one)."""

    type: Literal["pause-automation"] = "pause-automation"


class ResumeAutomation(_AutomationAction):
    """Resume an automation (inferred: this one)."""

    type: Literal["resume-automation"] = "resume-automation"


class SendSlack(_Action):
    """Post to a Slack incoming webhook."""

    type: Literal["send-slack"] = "send-slack"
    template_fields: ClassVar[tuple[str, ...]] = ("webhook_url", "text", "blocks")
    webhook_url: str = Field(description="Incoming-webhook URL (template, e.g. a secret).")
    text: str | None = Field(
        default=None, description="Message text (template); default: a summary of the firing."
    )
    blocks: list[JSONObject] | None = Field(
        default=None, description="Block Kit blocks; string values are templates."
    )
    grouping: Grouping | None = _grouping()


class SendNotification(_Action):
    """Send a notification through any Apprise URL (or a Prefect notification block)."""

    type: Literal["send-notification"] = "send-notification"
    template_fields: ClassVar[tuple[str, ...]] = ("url", "subject", "body")
    url: str | None = Field(
        default=None, description="tripwire: an Apprise URL (template, e.g. a secret)."
    )
    block_document_id: UUID | None = Field(
        default=None, description="Prefect: a notification block on the Prefect server."
    )
    connection: str | None = Field(
        default=None,
        description="tripwire: the named Prefect connection the block is read from "
        "(default: settings).",
    )
    subject: str = Field(default="Prefect automated notification", description="Template.")
    body: str = Field(description="The notification's text (template).")
    grouping: Grouping | None = _grouping()

    @model_validator(mode="after")
    def _one_destination(self) -> SendNotification:
        if (self.url is None) == (self.block_document_id is None):
            raise ValueError("set exactly one of url (an Apprise URL) or block_document_id")
        if self.connection is not None and self.block_document_id is None:
            raise ValueError("connection names where a block is read from: set block_document_id")
        return self


class CallWebhook(_Action):
    """Call an HTTP endpoint; any answer but 2xx is a failure."""

    type: Literal["call-webhook"] = "call-webhook"
    template_fields: ClassVar[tuple[str, ...]] = (
        "url",
        "headers",
        "json_body",
        "body",
        "payload",
        "signing_secret",
    )
    url: str | None = Field(default=None, description="tripwire: the URL (template).")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(default="POST")
    headers: dict[str, str] = Field(default_factory=dict, description="Header templates.")
    json_body: Any = Field(
        default=None, alias="json", description="A JSON body; string values are templates."
    )
    body: str | None = Field(default=None, description="A raw body (template).")
    timeout: Duration = Field(default=timedelta(seconds=10), description="Per attempt.")
    signing_secret: str | None = Field(
        default=None, description="Sign with the Standard Webhooks scheme (template, a secret)."
    )
    block_document_id: UUID | None = Field(
        default=None, description="Prefect: a webhook block on the Prefect server."
    )
    connection: str | None = Field(
        default=None,
        description="tripwire: the named Prefect connection the block is read from "
        "(default: settings).",
    )
    payload: str | None = Field(default=None, description="Prefect: the body (template).")
    grouping: Grouping | None = _grouping()

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_target(self) -> CallWebhook:
        if (self.url is None) == (self.block_document_id is None):
            raise ValueError("set exactly one of url or block_document_id (a Prefect block)")
        if self.connection is not None and self.block_document_id is None:
            raise ValueError("connection names where a block is read from: set block_document_id")
        if self.json_body is not None and (self.body is not None or self.payload is not None):
            raise ValueError("set json or body (payload), not both")
        return self


class PagerDuty(_Action):
    """Open, acknowledge and resolve a PagerDuty alert through the Events API v2."""

    type: Literal["pagerduty"] = "pagerduty"
    template_fields: ClassVar[tuple[str, ...]] = (
        "routing_key",
        "summary",
        "source",
        "component",
        "group",
        "class_",
        "url",
    )
    routing_key: str = Field(
        description="The integration key of an Events API v2 integration (template, a secret)."
    )
    summary: str | None = Field(
        default=None,
        description="The alert's title (template, cut to 1024 characters); default: a summary "
        "of the alerts or the firing.",
    )
    source: str | None = Field(
        default=None, description="The affected system (template); default: tripwire."
    )
    component: str | None = Field(default=None, description="The broken part (template).")
    group: str | None = Field(default=None, description="A grouping of sources (template).")
    class_: str | None = Field(
        default=None, alias="class", description="The kind of problem (template)."
    )
    severity: Literal["critical", "error", "warning", "info"] | None = Field(
        default=None,
        description="Default: the alerts' severity; critical, warning and info as they are, "
        "anything else error.",
    )
    url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue",
        description="The Events API endpoint (template), e.g. "
        "https://events.eu.pagerduty.com/v2/enqueue for an EU account.",
    )
    grouping: Grouping | None = _grouping()

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DeclareIncident(_Action):
    """Prefect Cloud's incident, as tripwire has it: the alert this firing opens is
    critical (its notifications and PagerDuty say so); nothing else runs."""

    type: Literal["declare-incident"] = "declare-incident"


class SendEmailNotification(_Action):
    """Prefect Cloud's email action: a message to `emails`, sent through your SMTP server
    with Apprise."""

    type: Literal["send-email-notification"] = "send-email-notification"
    template_fields: ClassVar[tuple[str, ...]] = ("emails", "subject", "body", "smtp")
    emails: list[str] = Field(min_length=1, description="The recipients (templates).")
    subject: str = Field(default="Prefect automated notification", description="Template.")
    body: str = Field(description="The message's text (template).")
    block_document_id: UUID | None = Field(
        default=None,
        description="Prefect Cloud: its own email sender; tripwire sends through `smtp`.",
    )
    smtp: str = Field(
        default="{{ secret('SMTP_URL') }}",
        description="tripwire: the SMTP server as an Apprise mailto:// or mailtos:// URL with "
        "its sender, e.g. mailtos://user:password@smtp.example.com?from=alerts@example.com "
        "(template; by default the secret SMTP_URL).",
    )
    grouping: Grouping | None = _grouping()


class EmitEvent(_Action):
    """Emit an event onto the bus (its fields are templates)."""

    type: Literal["emit-event"] = "emit-event"
    template_fields: ClassVar[tuple[str, ...]] = ("event", "resource", "related", "payload")
    event: str = Field(description="Event name (template).")
    resource: dict[str, str] = Field(description="Resource labels (templates).")
    related: list[dict[str, str]] = Field(default_factory=list, description="Related resources.")
    payload: JSONObject = Field(default_factory=dict, description="Payload (templates).")

    @model_validator(mode="after")
    def _resource_id(self) -> EmitEvent:
        if not self.resource.get("prefect.resource.id"):
            raise ValueError("resource needs prefect.resource.id")
        return self


# Actions that tell people; the alerts engine sends those with `grouping:` (and
# pagerduty always), and silences hold them back.
NOTIFICATION_TYPES = frozenset(
    {"send-slack", "send-notification", "send-email-notification", "call-webhook", "pagerduty"}
)
# Actions the alerts engine carries out, never a firing's action request.
ALERT_TYPES = frozenset({"pagerduty", "declare-incident"})


def grouped(action: Any, damped: bool = False) -> bool:
    """True when the alerts engine, not the firing, sends (or carries out) this action.
    `damped`: its automation has `pending_for`, so the alert decides whether any of its
    notifications go out."""
    kind = getattr(action, "type", None)
    return (
        kind in ALERT_TYPES
        or getattr(action, "grouping", None) is not None
        or (damped and kind in NOTIFICATION_TYPES)
    )


Action = Annotated[
    DoNothing
    | RunDeployment
    | PauseDeployment
    | ResumeDeployment
    | PauseWorkQueue
    | ResumeWorkQueue
    | PauseWorkPool
    | ResumeWorkPool
    | CancelFlowRun
    | SuspendFlowRun
    | ResumeFlowRun
    | DeleteFlowRun
    | ChangeFlowRunState
    | PauseAutomation
    | ResumeAutomation
    | SendSlack
    | SendNotification
    | CallWebhook
    | PagerDuty
    | DeclareIncident
    | SendEmailNotification
    | EmitEvent,
    Field(discriminator="type"),
]
