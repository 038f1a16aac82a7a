"""Action models: Prefect's actions load unchanged; targets and destinations are checked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from actions.model import Action, CallWebhook, PauseWorkQueue, RunDeployment
from tests.support import FIXTURES

actions: TypeAdapter[list[Any]] = TypeAdapter(list[Action])


def test_prefects_exported_actions_load_unchanged() -> None:
    exported = yaml.safe_load((FIXTURES / "etl-orders-keeps-failing.yaml").read_text())[0]
    run, pause, nothing = actions.validate_python(exported["actions"])
    assert isinstance(run, RunDeployment)
    assert str(run.deployment_id) == "b81945e0-4ba0-4344-8f7e-6a78759b98cb"
    assert run.parameters == {
        "retry": True,
        "reason": "{{ event.resource['prefect.state-message'] }}",
    }
    assert run.schedule_after == timedelta(0)
    assert isinstance(pause, PauseWorkQueue)
    assert pause.source == "inferred"
    assert nothing.type == "do-nothing"


@pytest.mark.parametrize(
    ("action", "words"),
    [
        ({"type": "pause-work-queue"}, "set exactly one of work_queue_id or work_queue_name"),
        (
            {"type": "run-deployment", "source": "inferred", "deployment": "etl/prod"},
            "must not be set",
        ),
        ({"type": "run-deployment", "deployment": "etl/prod/x"}, "pattern"),
        (
            {
                "type": "pause-automation",
                "automation": "a",
                "automation_id": "45c5cbb5-cd87-49dd-b1d5-d4119272f831",
            },
            "exactly one",
        ),
        ({"type": "send-slack"}, "webhook_url"),
        ({"type": "send-notification", "body": "x"}, "exactly one of url"),
        ({"type": "call-webhook", "url": "https://x", "json": {"a": 1}, "body": "b"}, "not both"),
        ({"type": "emit-event", "event": "x", "resource": {"a": "b"}}, "prefect.resource.id"),
        ({"type": "change-flow-run-state", "state": "DONE"}, "state"),
        ({"type": "open-incident"}, "does not match any of the expected tags"),
        ({"type": "declare-incident", "severity": "high"}, "Extra inputs"),
        ({"type": "do-nothing", "reason": "x"}, "Extra inputs"),
    ],
)
def test_mistakes_are_explained(action: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words.replace("(", r"\(")):
        actions.validate_python([action])


def test_tripwire_additions() -> None:
    by_name, webhook, queue = actions.validate_python(
        [
            {
                "type": "run-deployment",
                "deployment": "etl/prod",
                "parameters": {"n": 3},
                "schedule_after": "5m",
                "tags": ["auto"],
            },
            {
                "type": "call-webhook",
                "url": "https://hooks.example/x",
                "json": {"event": "{{ event.event }}"},
                "timeout": "3s",
                "retries": 2,
                "retry_delay": "1s",
            },
            {"type": "resume-work-queue", "work_queue_name": "default", "work_pool_name": "k8s"},
        ]
    )
    assert (by_name.deployment, by_name.schedule_after) == ("etl/prod", timedelta(minutes=5))
    assert isinstance(webhook, CallWebhook)
    assert webhook.json_body == {"event": "{{ event.event }}"}
    assert (webhook.timeout, webhook.retries) == (timedelta(seconds=3), 2)
    assert queue.work_pool_name == "k8s"
