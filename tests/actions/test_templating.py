"""Templates: real Jinja in the sandbox, its limits, secrets, Prefect's context names, and
templates checked when an action is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from actions.context import PrefectRef, RunState, template_context
from actions.errors import TemplateError
from actions.model import Action
from actions.templating import Templates
from events.model import ReceivedEvent
from events.sandbox import MAX_ITERATIONS, MAX_OUTPUT
from events.secrets import Secrets
from tests.actions.conftest import request_for
from tests.conftest import FIXTURES
from triggers.loading import load_text

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


# --- rendering ---------------------------------------------------------------------------


def test_a_lone_expression_keeps_its_json_type(templates: Templates) -> None:
    context = {"payload": {"rows": 3, "ids": [1, 2], "meta": {"ok": True}}}
    rendered = templates.render_value(
        {
            "rows": "{{ payload.rows }}",
            "ids": " {{ payload.ids }} ",
            "meta": "{{- payload.meta -}}",
            "text": "rows: {{ payload.rows }}",
            "two": "{{ payload.rows }}{{ payload.rows }}",
            "kept": 5,
        },
        context,
        "parameters",
    )
    assert rendered == {
        "rows": 3,
        "ids": [1, 2],
        "meta": {"ok": True},
        "text": "rows: 3",
        "two": "33",
        "kept": 5,
    }
    assert type(rendered["rows"]) is int


def test_an_undefined_name_names_the_field_and_line(templates: Templates) -> None:
    with pytest.raises(TemplateError) as info:
        templates.render_value(
            {"a": ["fine", "first\n{{ payload.nope }}"]}, {"payload": {}}, "parameters"
        )
    assert info.value.field == "parameters.a[1]"
    assert "'dict object' has no attribute 'nope'" in str(info.value)
    assert "(line 2)" in str(info.value)
    with pytest.raises(TemplateError, match="'missing' is undefined") as lone:
        templates.render_value("{{ missing }}", {}, "json.x")
    assert lone.value.field == "json.x"


def test_check_names_the_field_and_line(templates: Templates) -> None:
    templates.check("plain {{ ok }}", "text")
    with pytest.raises(TemplateError) as info:
        templates.check("line one\n{% if x %}", "text")
    assert info.value.field == "text"
    assert "does not parse" in info.value.error
    assert "(line 2)" in info.value.error


def test_ordinary_templates_are_untouched_by_the_limits(templates: Templates) -> None:
    source = (
        "{% set ns = namespace(total=0) %}"
        "{% for k, v in counts|dictsort %}{% set ns.total = ns.total + v %}{{ k }}={{ v }} "
        "{% endfor %}"
        "{% macro shout(s) %}{{ s|upper }}!{% endmacro %}"
        "{% set note %}{{ shout('done') }}{% endset %}"
        "{{ ns.total }} {{ note }} {{ ['a', 'b']|join('+') }} {{ '%05d'|format(42) }} "
        "{{ '{:>4}'.format(7) }} {{ 'ab' * 3 }} {{ 2 ** 10 }} {{ (1, 2)|list }} "
        "{{ {'k': 1}.k }} {% for i in range(3) %}{{ loop.index }}{% endfor %}"
    )
    rendered = templates.render(source, {"counts": {"a": 1, "b": 2}}, "text")
    assert rendered == "a=1 b=2 3 DONE! a+b 00042    7 ababab 1024 [1, 2] 1 123"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        # the iteration budget: range() items, loop passes and calls
        (
            "{% for i in range(200) %}{% for j in range(200) %}{% endfor %}{% endfor %}",
            f"more than {MAX_ITERATIONS:,} loop passes",
        ),
        ("{% for a in rows %}{% for b in rows %}{% endfor %}{% endfor %}", "loop passes"),
        ("{{ range(10**12)|list }}", "range() items"),
        (
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
            "{{ f(30) }}",
            "calls in one render",
        ),
        # the output cap
        (
            "{% for i in range(3000) %}{{ 'x' * 50 }}{% endfor %}",
            f"rendered text is longer than {MAX_OUTPUT:,} characters",
        ),
        # sizes refused before the value is built
        ("{{ 'x' * 10**9 }}", "the result of '*' is 1,000,000,000 characters"),
        ("{{ [rows] * 10**6 }}", "the result of '*'"),
        ("{{ 10 ** 1000000 }}", "'**' would be a number of about 1,000,000 digits"),
        ("{{ 'x'|center(10**9) }}", "center filter"),
        ("{{ 'x'.ljust(10**9) }}", "str.ljust()"),
        ("{{ '%999999999d' % 1 }}", "the width in a % format"),
        ("{{ '{:>{}}'.format(1, 10**9) }}", "computed width"),
        ("{{ ('a' * 9999)|replace('a', 'b' * 9999) }}", "replace filter"),
        # growth step by step: each step is sized right after it
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "a value the template built",
        ),
        (
            "{% macro d(s, n) %}{% if n %}{{ d(s|tojson, n - 1) }}{% endif %}{% endmacro %}"
            "{{ d('<', 40) }}",
            "tojson filter",
        ),
        (
            "{% set a = 'x' * 1000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
            "{% set c = [b, b, b, b, b, b, b, b, b, b] %}",
            "a value the template built",
        ),
    ],
)
def test_each_limit_is_refused_with_a_clear_message(
    templates: Templates, source: str, words: str
) -> None:
    with pytest.raises(TemplateError) as info:
        templates.render(source, {"rows": list(range(500))}, "body")
    assert info.value.field == "body"
    assert words in info.value.error
    assert "allowed" in info.value.error or "render" in info.value.error  # says what to do


def test_a_slow_render_is_stopped() -> None:
    quick = Templates(Secrets(environ={}), max_seconds=0.01)
    # 9,000 loop passes (inside the budget), each scanning a 9,000-item list: far past 10ms.
    source = "{% for a in rows %}{% if -a in rows %}{% endif %}{% endfor %}"
    with pytest.raises(TemplateError, match=r"took more than 0.01s to render"):
        quick.render(source, {"rows": list(range(9000))}, "text")


def test_lipsum_is_not_available(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="'lipsum' is undefined"):
        templates.render("{{ lipsum(10**9) }}", {}, "text")


# --- secrets -----------------------------------------------------------------------------


def test_secret_reads_the_secrets_file_then_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "secrets"
    file.write_text('# for the webhook\nexport TOKEN="from-file-1234"\n\n')
    secrets = Secrets(environ={"TOKEN": "from-env-1234", "OTHER": "env-only-5678"}, file=file)
    rendered = Templates(secrets).render("{{ secret('TOKEN') }}/{{ secret('OTHER') }}", {}, "url")
    assert rendered == "from-file-1234/env-only-5678"


def test_a_missing_secret_names_the_variable_and_the_field() -> None:
    templates = Templates(Secrets(environ={}))
    with pytest.raises(TemplateError) as info:
        templates.render("https://hooks.slack.com/{{ secret('SLACK_PATH') }}", {}, "webhook_url")
    assert info.value.field == "webhook_url"
    assert "secret 'SLACK_PATH' is not set" in info.value.error
    assert "environment variable SLACK_PATH" in info.value.error


def test_the_engines_own_settings_are_not_secrets_templates_can_read(tmp_path: Path) -> None:
    environ = {"TRIPWIRE_DATABASE_URL": "postgresql://app:pw-1234@db/tripwire"}
    templates = Templates(Secrets(environ=environ))
    with pytest.raises(TemplateError) as info:
        templates.render("{{ secret('TRIPWIRE_DATABASE_URL') }}", {}, "url")
    assert "one of tripwire's own settings" in info.value.error
    assert "pw-1234" not in info.value.error
    # What the operator puts in the secrets file under any name is theirs to hand out.
    file = tmp_path / "secrets"
    file.write_text("TRIPWIRE_RELAY_TOKEN=relay-5678\n")
    rendered = Templates(Secrets(environ=environ, file=file)).render(
        "{{ secret('TRIPWIRE_RELAY_TOKEN') }}", {}, "url"
    )
    assert rendered == "relay-5678"


def test_a_rendered_url_with_a_secret_is_redacted() -> None:
    secrets = Secrets(environ={"HOOK_TOKEN": "T0KEN-abc-123"})
    url = Templates(secrets).render(
        "https://hooks.example/{{ secret('HOOK_TOKEN') }}?run={{ run }}", {"run": 7}, "url"
    )
    assert url == "https://hooks.example/T0KEN-abc-123?run=7"
    assert secrets.redact(f"POST {url} answered 500") == (
        "POST https://hooks.example/***?run=7 answered 500"
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
        state=RunState(name="Late", type="SCHEDULED"),
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
    assert context["task_run"].state == RunState(name="Failed", type="FAILED")
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
