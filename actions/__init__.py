"""Actions: what an automation does — the models, templates and secrets, the executors,
the ledger and the runner that executes action requests from the bus."""

from actions.connections import ConnectionBook, ConnectionDefinition, ConnectionStore
from actions.context import template_context
from actions.errors import ActionFailed, ActionRetry, ActionsError, TemplateError, UnsafeURL
from actions.execution import Execution, Outcome
from actions.ledger import Ledger, Status
from actions.model import (
    Action,
    CallWebhook,
    CancelFlowRun,
    ChangeFlowRunState,
    DeleteFlowRun,
    DoNothing,
    EmitEvent,
    PagerDuty,
    PauseAutomation,
    PauseDeployment,
    PauseWorkPool,
    PauseWorkQueue,
    ResumeAutomation,
    ResumeDeployment,
    ResumeFlowRun,
    ResumeWorkPool,
    ResumeWorkQueue,
    RunDeployment,
    SendNotification,
    SendSlack,
    StateType,
    SuspendFlowRun,
)
from actions.request import ActionRequest, AutomationRef, FiringState
from actions.runner import ActionRunner, RetryPolicy
from actions.templating import Templates

__all__ = [
    "Action",
    "ActionFailed",
    "ActionRequest",
    "ActionRetry",
    "ActionRunner",
    "ActionsError",
    "AutomationRef",
    "CallWebhook",
    "CancelFlowRun",
    "ChangeFlowRunState",
    "ConnectionBook",
    "ConnectionDefinition",
    "ConnectionStore",
    "DeleteFlowRun",
    "DoNothing",
    "EmitEvent",
    "Execution",
    "FiringState",
    "Ledger",
    "Outcome",
    "PagerDuty",
    "PauseAutomation",
    "PauseDeployment",
    "PauseWorkPool",
    "PauseWorkQueue",
    "ResumeAutomation",
    "ResumeDeployment",
    "ResumeFlowRun",
    "ResumeWorkPool",
    "ResumeWorkQueue",
    "RetryPolicy",
    "RunDeployment",
    "SendNotification",
    "SendSlack",
    "StateType",
    "Status",
    "SuspendFlowRun",
    "TemplateError",
    "Templates",
    "UnsafeURL",
    "template_context",
]
