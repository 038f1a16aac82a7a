"""Templates in actions: Prefect's context names and templates checked when an action is
loaded. The sandbox itself (rendering, limits, secrets) is tested in
tests/events/test_templating.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from actions.context import PrefectRef, RunState, template_context
from actions.model import Action
from actions.templating import Templates
from events.model import ReceivedEvent
from events.secrets import Secrets
from tests.actions.conftest import request_for
from tests.support import FIXTURES
from tripwire.definitions import load_text

ACTION: TypeAdapter[Action] = TypeAdapter(Action)


def fixture_event(name: str, resource_id_prefix: str = "") -> ReceivedEvent:
    """The first event called `name` in the captured Prefect events."""
    for line in (FIXTURES / "flow-run-events.jsonl").read_text().splitlines():
        data = json.loads(line)
        if data["event"] == name and data["resource"]["prefect.resource.id"].startswith(
            resource_id_prefix
        ):
            return ReceivedEvent.model_validate(data)
    raise LookupError(name)


@pytest.fixture
def templates() -> Templates:
    return Templates(Secrets(environ={}))


@pytest.fixture
def late() -> dict[str, Any]:
    """The context of a firing on the deployment run that went Late."""
    return template_context(
        request_for({"type": "do-nothing"}, fixture_event("prefect.flow-run.Late"))
    )


# --- the context -------------------------------------------------------------------------


def test_context_of_a_flow_run_event(late: dict[str, Any]) -> None:
    event = late["event"]
    assert late["events"] == [event]
    assert late["automation"].name == "etl-watch"
    assert late["firing"].state == "triggered"
    assert late["firing"].action_index == 0
    assert late["firing"].depth == 1
    assert late["flow_run"] == PrefectRef(
        id="96d45afe-51de-4397-9730-aeb8e148128f",
        name="didactic-bulldog",
        labels=dict(event.resource),
        state=RunState(
            name="Late",
            type="SCHEDULED",
            message="",
            timestamp=datetime(2026, 11, 21, 9, 38, 37, 24705, tzinfo=UTC),
        ),
    )
    assert (late["flow"].id, late["flow"].name) == (
        "fde78461-c5bd-47fe-be86-850fb1e69223",
        "bars-flow",
    )
    assert late["deployment"].id == "b81945e0-4ba0-4344-8f7e-6a78759b98cb"
    assert late["deployment"].name == "bars-dep"
    assert late["work_queue"].name == "default"
    assert late["work_pool"].labels["prefect.work-pool.type"] == "process"
    assert late["deployment"].state is None
    assert late["task_run"] is None


def test_prefect_names_render_in_the_sandbox(templates: Templates, late: dict[str, Any]) -> None:
    text = templates.render(
        "{{ flow_run.name }} is {{ flow_run.state.name }} ({{ flow_run.state.type }}) "
        "in {{ flow.name }}/{{ deployment.name }} on {{ work_pool.name }}:{{ work_queue.name }}; "
        "{{ event.resource.id }} == {{ event.resource['prefect.resource.id'] }}; "
        "{{ event.payload.validated_state.name }}; {{ automation.name }} {{ firing.state }}",
        late,
        "text",
    )
    assert text == (
        "didactic-bulldog is Late (SCHEDULED) in bars-flow/bars-dep on bars-pool:default; "
        "prefect.flow-run.96d45afe-51de-4397-9730-aeb8e148128f == "
        "prefect.flow-run.96d45afe-51de-4397-9730-aeb8e148128f; Late; etl-watch triggered"
    )
    assert templates.render_value("{{ event.payload.intended }}", late, "parameters.x") == {
        "from": "SCHEDULED",
        "to": "SCHEDULED",
    }
    assert templates.render_value("{{ events|length }}", late, "parameters.n") == 1


def test_context_of_a_task_run_event(templates: Templates) -> None:
    failed = fixture_event("prefect.task-run.Failed")
    context = template_context(request_for({"type": "do-nothing"}, failed))
    assert context["task_run"].id == "01a1fd7c-d0e1-7c7c-b2fb-97d4f1aeb54f"
    state = context["task_run"].state
    assert (state.name, state.type) == ("Failed", "FAILED")
    assert state.message == "Task run encountered an exception ValueError: too few rows"
    assert state.timestamp == datetime.fromisoformat(failed.resource["prefect.state-timestamp"])
    # The flow run is only related: its id and name, no state labels.
    assert context["flow_run"] == PrefectRef(
        id="ca9ccda5-45a7-457c-838e-c987f0b2d62d",
        name="tuscan-guppy",
        labels=dict(failed.related[0]),
    )
    assert context["flow"].name == "etl-orders"
    assert context["deployment"] is None
    rendered = templates.render(
        "{{ task_run.name }} of {{ flow_run.name }}: "
        "{{ task_run.labels['prefect.state-message'] }}",
        context,
        "text",
    )
    assert (
        rendered
        == "load-bd8 of tuscan-guppy: Task run encountered an exception ValueError: too few rows"
    )


def test_context_without_an_event_and_with_extra() -> None:
    request = request_for({"type": "do-nothing"}, labels={"prefect.resource.id": "x"})
    context = template_context(request, extra={"sla": {"name": "nightly"}})
    assert context["event"] is None
    assert context["events"] == []
    assert context["labels"] == {"prefect.resource.id": "x"}
    assert context["sla"] == {"name": "nightly"}
    for name in ("flow_run", "flow", "deployment", "work_queue", "work_pool", "task_run"):
        assert context[name] is None
    rendered = Templates(Secrets(environ={})).render(
        "{{ sla.name }}: {{ event }} {{ flow_run is none }}", context, "text"
    )
    assert rendered == "nightly: None True"


# --- templates checked when an action is loaded -------------------------------------------


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (
            {"type": "send-slack", "webhook_url": "https://x", "text": "{{ x }"},
            "text: template does not parse: unexpected '}' (line 1)",
        ),
        (
            {"type": "send-slack", "webhook_url": "https://x", "blocks": [{"text": "{{ ("}]},
            "blocks[0].text: template does not parse",
        ),
        (
            {"type": "run-deployment", "deployment": "a/b", "parameters": {"a": ["ok", "{{"]}},
            "parameters.a[1]: template does not parse",
        ),
        (
            {"type": "change-flow-run-state", "state": "FAILED", "message": "why\n{% if %}"},
            "message: template does not parse",
        ),
        (
            {"type": "send-notification", "url": "json://x", "body": "b", "subject": "{{ a b }}"},
            "subject: template does not parse",
        ),
        (
            {"type": "call-webhook", "url": "https://x", "headers": {"Authorization": "{{ t"}},
            "headers.Authorization: template does not parse",
        ),
        (
            {"type": "call-webhook", "url": "https://x", "json": {"k": [{"v": "{% for %}"}]}},
            "json.k[0].v: template does not parse",
        ),
        (
            {"type": "call-webhook", "url": "https://x", "signing_secret": "{{ secret('S') "},
            "signing_secret: template does not parse",
        ),
        (
            {
                "type": "emit-event",
                "event": "ok",
                "resource": {"prefect.resource.id": "a"},
                "related": [{"prefect.resource.id": "b", "prefect.resource.role": "{{ }}"}],
            },
            "related[0].prefect.resource.role: template does not parse",
        ),
    ],
)
def test_broken_templates_are_refused_when_loaded(action: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as info:
        ACTION.validate_python(action)
    assert words in str(info.value)


def test_every_broken_template_is_listed_and_other_fields_are_not_templates() -> None:
    with pytest.raises(ValidationError) as info:
        ACTION.validate_python(
            {"type": "call-webhook", "url": "https://x/{{ a", "body": "{% endif %}"}
        )
    assert "url: template" in str(info.value)
    assert "body: template" in str(info.value)
    # Tags and job variables are not templates: they load as written.
    run = ACTION.validate_python(
        {
            "type": "run-deployment",
            "deployment": "a/b",
            "tags": ["{{ x }"],
            "job_variables": {"image": "{{"},
            "parameters": {"body": '{"json": "with single braces"}'},
        }
    )
    assert run.type == "run-deployment"


def test_template_fields_are_declared_on_each_action() -> None:
    models = get_args(get_args(Action)[0])
    declared = {m.model_fields["type"].default: m.template_fields for m in models}
    for model in models:
        assert set(model.template_fields) <= set(model.model_fields), model.__name__
    assert {k: v for k, v in declared.items() if v} == {
        "run-deployment": ("parameters",),
        "change-flow-run-state": ("message",),
        "send-slack": ("webhook_url", "text", "blocks"),
        "send-notification": ("url", "subject", "body"),
        "call-webhook": ("url", "headers", "json_body", "body", "payload", "signing_secret"),
        "emit-event": ("event", "resource", "related", "payload"),
        "pagerduty": ("routing_key", "summary", "source", "component", "group", "class_", "url"),
        "send-email-notification": ("emails", "subject", "body", "smtp"),
    }


def test_a_broken_template_in_a_file_names_the_line_and_field() -> None:
    text = """\
name: etl
trigger: {type: event, expect: [prefect.flow-run.Failed]}
actions:
  - type: do-nothing
  - type: send-slack
    webhook_url: "{{ secret('SLACK') }}"
    text: "{{ flow_run.name }"
"""
    errors = load_text(text, "etl.yaml").errors
    assert [(e.line, e.field) for e in errors] == [(5, "actions[1]")]
    assert "text: template does not parse: unexpected '}' (line 1)" in errors[0].message
