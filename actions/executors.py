"""Every action type and the function that runs it."""

from __future__ import annotations

from collections.abc import Mapping

from actions.builtin import BUILTIN_EXECUTORS
from actions.email import EMAIL_EXECUTORS
from actions.execution import Executor
from actions.notify import NOTIFY_EXECUTORS
from actions.pagerduty import PAGERDUTY_EXECUTORS
from actions.prefect import PREFECT_EXECUTORS
from actions.slack import SLACK_EXECUTORS
from actions.webhook import WEBHOOK_EXECUTORS

EXECUTORS: Mapping[str, Executor] = {
    **BUILTIN_EXECUTORS,
    **PREFECT_EXECUTORS,
    **SLACK_EXECUTORS,
    **NOTIFY_EXECUTORS,
    **EMAIL_EXECUTORS,
    **WEBHOOK_EXECUTORS,
    **PAGERDUTY_EXECUTORS,
}
