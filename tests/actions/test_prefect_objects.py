"""Prefect's objects and filters in templates, against a real Prefect 3.8 server: what a
template naming `flow_run`, `variables`... renders, what `ui_url` links to, and what is
left when Prefect cannot say (no connection, a deleted run, Prefect away)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, TypeAdapter, ValidationError

from actions.connections import ConnectionBook, ConnectionDefinition
from actions.context import PrefectRef, template_context
from actions.errors import TemplateError
from actions.executors import EXECUTORS
from actions.ledger import Ledger
from actions.model import Action
from actions.prefect_api import PrefectConnection, PrefectConnections
from actions.prefect_objects import prefect_context
from actions.request import ActionRequest
from actions.runner import ActionRunner
from actions.templating import Templates
from events.embedded import free_port
from events.model import ReceivedEvent
from events.secrets import Secrets
from tests.actions.conftest import AllowAll, Recorder, request_for
from tests.actions.prefect_server import PrefectObjects, PrefectServer
from tests.actions.proxies import CountingProxy
from tests.actions.receivers import Receiver, Reply
from tests.actions.test_prefect_actions import failed_event
from tripwire.database import create_engine, migrate

pytestmark = pytest.mark.prefect

ACTION: TypeAdapter[Action] = TypeAdapter(Action)

# What Prefect's UI writes into a new notification action.
PREFECT_DEFAULT_BODY = """\
Flow run {{ flow.name }}/{{ flow_run.name }} observed in state `{{ flow_run.state.name }}` \
at {{ flow_run.state.timestamp }}.
Flow ID: {{ flow_run.flow_id }}
Flow run ID: {{ flow_run.id }}
Flow run URL: {{ flow_run|ui_url }}
State message: {{ flow_run.state.message }}"""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def event_about(objects: PrefectObjects, flow_run: dict[str, Any]) -> ReceivedEvent:
    """Prefect's event for `flow_run` entering its current state, as the server emits it:
    the state in the resource's labels, the flow, deployment, queue and pool related."""
    event = failed_event(objects, flow_run)
    state = flow_run["state"]
    event["event"] = f"prefect.flow-run.{state['name']}"
    event["resource"].update(
        {
            "prefect.state-name": state["name"],
            "prefect.state-type": state["type"],
            "prefect.state-message": state["message"] or "",
            "prefect.state-timestamp": state["timestamp"],
        }
    )
    return ReceivedEvent.model_validate(event)


async def failed_run(objects: PrefectObjects, message: str = "too few rows") -> dict[str, Any]:
    """A run of the deployment that failed with `message`, as the API now has it."""
    run = await objects.flow_run()
    body = {"state": {"type": "FAILED", "name": "Failed", "message": message}, "force": True}
    result = await objects.post(f"/flow_runs/{run['id']}/set_state", body)
    assert result["status"] == "ACCEPT", result
    flow_run: dict[str, Any] = await objects.get(f"/flow_runs/{run['id']}")
    return flow_run


@pytest.fixture
def templates() -> Templates:
    return Templates(Secrets(environ={"PREFECT_KEY": "pnu_do-not-log-me"}))


@pytest.fixture
async def proxy(prefect_server: PrefectServer) -> AsyncIterator[CountingProxy]:
    async with CountingProxy(prefect_server.url) as running:
        yield running


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    db = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await migrate(db)
    yield Ledger(db)
    await db.dispose()


MakeRunner = Callable[[ConnectionBook | None], ActionRunner]


@pytest.fixture
def make_runner(
    ledger: Ledger, recorder: Recorder, http: httpx.AsyncClient, templates: Templates
) -> MakeRunner:
    def make(book: ConnectionBook | None) -> ActionRunner:
        return ActionRunner(
            ledger=ledger,
            executors=EXECUTORS,
            templates=templates,
            http=http,
            guard=AllowAll(),
            emit=recorder.emit,
            automations=recorder,
            prefect=book,
        )

    return make


def emitting(**payload: str) -> dict[str, Any]:
    """An emit-event action whose payload holds the templates under test."""
    return {
        "type": "emit-event",
        "event": "etl.noticed",
        "resource": {"prefect.resource.id": "etl.notice"},
        "payload": payload,
        "retries": 0,
    }


def emitted_payload(recorder: Recorder) -> dict[str, Any]:
    [event] = [e for e in recorder.emitted if e.event == "etl.noticed"]
    return dict(event.payload)


def book_for(api_url: str, **options: Any) -> ConnectionBook:
    return ConnectionBook(PrefectConnections(default=PrefectConnection(api_url=api_url, **options)))


async def context_for(
    request: ActionRequest,
    book: ConnectionBook | None,
    templates: Templates,
    http: httpx.AsyncClient,
    **options: Any,
) -> dict[str, Any]:
    """The context the runner gives an attempt of `request`."""
    context = template_context(request)
    context.update(await prefect_context(request, book, templates, http, **options))
    return context


# --- Prefect's own default notification ---------------------------------------------------


async def test_prefects_default_notification_body_renders_with_the_runs_real_values(
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
    proxy: CountingProxy,
    make_runner: MakeRunner,
    recorder: Recorder,
) -> None:
    objects = prefect_objects
    flow_run = await failed_run(objects)
    request = request_for(emitting(body=PREFECT_DEFAULT_BODY), event_about(objects, flow_run))

    assert await make_runner(book_for(proxy.url)).run(request) is None

    ui = proxy.url.removesuffix("/api")  # the UI is where the connection points
    timestamp = datetime.fromisoformat(flow_run["state"]["timestamp"])
    assert emitted_payload(recorder)["body"] == (
        f"Flow run {objects.flow_name}/{flow_run['name']} observed in state `Failed` "
        f"at {timestamp}.\n"
        f"Flow ID: {objects.flow_id}\n"
        f"Flow run ID: {flow_run['id']}\n"
        f"Flow run URL: {ui}/runs/flow-run/{flow_run['id']}\n"
        "State message: too few rows"
    )
    # flow_run and flow, once each; nothing for what the template does not name.
    assert sorted(proxy.requests.elements()) == sorted(
        [f"GET /api/flow_runs/{flow_run['id']}", f"GET /api/flows/{objects.flow_id}"]
    )


async def test_the_state_is_the_one_the_event_observed_the_rest_is_the_apis(
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
    templates: Templates,
    http: httpx.AsyncClient,
) -> None:
    objects = prefect_objects
    flow_run = await failed_run(objects)
    event = event_about(objects, flow_run)
    # The run moved on after the event, as Prefect's own actions allow for.
    await objects.post(
        f"/flow_runs/{flow_run['id']}/set_state", {"state": {"type": "COMPLETED"}, "force": True}
    )
    labelled = await objects.http.patch(
        f"{objects.url}/flow_runs/{flow_run['id']}/labels", json={"team": "data"}
    )
    assert labelled.status_code == 204
    source = (
        "{{ flow_run.state.message }} / {{ work_pool.labels['prefect.work-pool.type'] }} "
        "{{ work_pool.type }} / {{ work_queue.name }} {{ work_queue.late_runs_count }} / "
        "{{ deployment.name }} {{ deployment.work_pool_name }}"
    )
    request = request_for(emitting(body=source), event)

    context = await context_for(request, book_for(prefect_server.url), templates, http)

    seen = context["flow_run"]
    assert (seen.state["name"], seen.state["type"]) == ("Failed", "FAILED")
    assert seen.state["id"] is not None  # the rest of the state from the API
    assert seen.parameters == {"rows": 1}
    assert seen.deployment_id == objects.deployment_id
    assert isinstance(seen.created, datetime)
    # the API object's labels, and the event's labels of the run on top
    assert seen.labels["team"] == "data"
    assert seen.labels["prefect.state-name"] == "Failed"
    assert templates.render(source, context, "body") == (
        f"too few rows / process process / {objects.queue_name} 0 / "
        f"{objects.deployment_name} {objects.pool_name}"
    )


# --- variables, concurrency limits, firings --------------------------------------------


async def test_variables_are_the_workspaces_variables_by_name(
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
    templates: Templates,
    http: httpx.AsyncClient,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    await prefect_objects.post("/variables/", {"name": f"channel_{suffix}", "value": "#etl"})
    await prefect_objects.post("/variables/", {"name": f"rows_{suffix}", "value": 40})
    await prefect_objects.post("/variables/", {"name": f"owners_{suffix}", "value": ["ann"]})
    request = request_for(emitting(body="{{ variables }}"))  # no event is needed

    context = await context_for(request, book_for(prefect_server.url), templates, http)

    assert templates.render(
        f"{{{{ variables.channel_{suffix} }}}} {{{{ variables['owners_{suffix}'][0] }}}}",
        context,
        "body",
    ) == ("#etl ann")
    assert templates.render_value(f"{{{{ variables.rows_{suffix} + 2 }}}}", context, "x") == 42


async def test_a_concurrency_limit_and_the_firings(
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
    templates: Templates,
    http: httpx.AsyncClient,
) -> None:
    name = f"db-{uuid.uuid4().hex[:8]}"
    limit = await prefect_objects.post("/v2/concurrency_limits/", {"name": name, "limit": 3})
    event = {
        "event": "prefect.concurrency-limit.acquired",
        "resource": {"prefect.resource.id": f"prefect.concurrency-limit.{limit['id']}"},
    }
    request = request_for(emitting(body="{{ concurrency_limit.name }}"), event)

    context = await context_for(request, book_for(prefect_server.url), templates, http)

    text = templates.render(
        "{{ concurrency_limit.name }} allows {{ concurrency_limit.limit }}; "
        "{{ firings|length }} firing: {{ firings[0].id == firing.id }}",
        context,
        "body",
    )
    assert text == f"{name} allows 3; 1 firing: True"


# --- the filters --------------------------------------------------------------------------


async def test_ui_url_links_each_object_to_its_page_in_prefects_ui(
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
    templates: Templates,
    http: httpx.AsyncClient,
) -> None:
    objects = prefect_objects
    flow_run = await failed_run(objects)
    request = request_for(
        emitting(body="{{ flow_run|ui_url }} {{ deployment|ui_url }}"),
        event_about(objects, flow_run),
    )

    context = await context_for(request, book_for(prefect_server.url), templates, http)

    def render(source: str) -> str:
        return templates.render(source, context, "body")

    ui = prefect_server.url.removesuffix("/api")
    assert render("{{ flow_run|ui_url }}") == f"{ui}/runs/flow-run/{flow_run['id']}"
    assert render("{{ deployment|ui_url }}") == (
        f"{ui}/deployments/deployment/{objects.deployment_id}"
    )
    assert render("{{ flow|ui_url }}") == f"{ui}/flows/flow/{objects.flow_id}"
    assert render("{{ work_pool|ui_url }}") == f"{ui}/work-pools/work-pool/{objects.pool_name}"
    assert render("{{ work_queue|ui_url }}") == (f"{ui}/work-queues/work-queue/{objects.queue_id}")
    assert render("{{ event.resource|ui_url }}") == f"{ui}/runs/flow-run/{flow_run['id']}"
    event = request.triggering_event
    assert event is not None
    assert render("{{ event|ui_url }}") == (
        f"{ui}/events/event/{event.occurred:%Y-%m-%d}/{event.id}"
    )
    assert render("{{ deployment|ui_resource_events_url }}") == (
        f"{ui}/events?resource=prefect.deployment.{objects.deployment_id}"
    )
    assert render("{{ (flow_run|ui_url)|flow_run_id }}") == flow_run["id"]
    assert render("{{ 'see PR body'|flow_run_id }} {{ automation|ui_url }}") == "None None"


async def test_the_ui_root_comes_from_the_connection(
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
    templates: Templates,
    http: httpx.AsyncClient,
) -> None:
    flow_run = await failed_run(prefect_objects)
    request = request_for(
        emitting(body="{{ flow_run|ui_url }}"), event_about(prefect_objects, flow_run)
    )
    book = book_for(prefect_server.url, ui_url="https://prefect.example.com/")

    context = await context_for(request, book, templates, http)

    assert templates.render("{{ flow_run|ui_url }}", context, "body") == (
        f"https://prefect.example.com/runs/flow-run/{flow_run['id']}"
    )
    cloud = "https://api.prefect.cloud/api/accounts/A/workspaces/W"
    assert PrefectConnection(api_url=cloud).ui == "https://app.prefect.cloud/account/A/workspace/W"
    stored = ConnectionDefinition(name="cloud", api_url=cloud, api_key="{{ secret('KEY') }}")
    assert stored.render(Templates(Secrets(environ={"KEY": "k"}))).ui == (
        "https://app.prefect.cloud/account/A/workspace/W"
    )
    with pytest.raises(ValidationError, match="http"):
        ConnectionDefinition(name="x", api_url=cloud, ui_url="app.prefect.cloud")


def test_the_filters_are_accepted_when_an_action_is_validated(templates: Templates) -> None:
    action = ACTION.validate_python(
        {
            "type": "send-notification",
            "block_document_id": str(uuid.uuid4()),
            "subject": "{{ flow_run|ui_url }}",
            "body": "{{ deployment|ui_resource_events_url }} {{ event.payload.pr|flow_run_id }}",
        }
    )
    assert action.type == "send-notification"
    for source in ("{{ flow_run|ui_url }}", "{% filter flow_run_id %}x{% endfilter %}"):
        templates.check(source, "body")
        templates._template(source)  # compiles: the filters exist
    # The sandbox's limits hold inside the filters' arguments too.
    with pytest.raises(TemplateError, match="loop passes"):
        templates.render("{{ range(10**9)|list|join|flow_run_id }}", {}, "body")


# --- what is left when Prefect cannot say ----------------------------------------------


async def test_a_deleted_flow_run_leaves_its_labels_and_one_warning(
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
    templates: Templates,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow_run = await failed_run(prefect_objects)
    event = event_about(prefect_objects, flow_run)
    response = await http.delete(f"{prefect_server.url}/flow_runs/{flow_run['id']}")
    assert response.status_code == 204
    request = request_for(emitting(body="{{ flow_run.name }} {{ flow.name }}"), event)

    with caplog.at_level(logging.WARNING, "tripwire.actions"):
        context = await context_for(request, book_for(prefect_server.url), templates, http)

    assert isinstance(context["flow_run"], PrefectRef)  # the label view, as without Prefect
    assert templates.render("{{ flow_run.name }}: {{ flow_run.state.name }}", context, "b") == (
        f"{flow_run['name']}: Failed"
    )
    assert context["flow"].id == prefect_objects.flow_id  # the flow is still there
    [warning] = [r.getMessage() for r in caplog.records if r.name == "tripwire.actions"]
    assert "flow_run: not found (404)" in warning
    with pytest.raises(TemplateError, match="has no attribute 'flow_id'"):
        templates.render("{{ flow_run.flow_id }}", context, "body")


async def test_an_unreachable_prefect_runs_the_action_on_the_labels(
    prefect_objects: PrefectObjects,
    make_runner: MakeRunner,
    recorder: Recorder,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow_run = await failed_run(prefect_objects)
    event = event_about(prefect_objects, flow_run)
    book = book_for(
        f"http://127.0.0.1:{free_port()}/api",  # nothing listens: a real refusal
        api_key=SecretStr("pnu_do-not-log-me"),
    )
    request = request_for(
        emitting(body="{{ flow_run.name }} is {{ flow_run.state.name }} {{ flow_run|ui_url }}"),
        event,
    )

    with caplog.at_level(logging.WARNING, "tripwire.actions"):
        assert await make_runner(book).run(request) is None

    ui = book.settings.get(None).ui  # the URL filters need no answer from Prefect
    assert emitted_payload(recorder)["body"] == (
        f"{flow_run['name']} is Failed {ui}/runs/flow-run/{flow_run['id']}"
    )
    entry = await ledger.get(str(request.id))
    assert entry is not None
    assert (entry["status"], entry["attempts"]) == ("succeeded", 1)
    warnings = [r.getMessage() for r in caplog.records if r.name == "tripwire.actions"]
    assert len(warnings) == 1
    assert "flow_run: Prefect unreachable (Connect" in warnings[0]
    assert "pnu_do-not-log-me" not in caplog.text

    # A field the labels do not have then fails the render, naming it; not retried.
    undefined = request_for(emitting(body="{{ flow_run.flow_id }}"), event)
    assert await make_runner(book).run(undefined) is None
    failed = await ledger.get(str(undefined.id))
    assert failed is not None
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert "template payload.body" in failed["last_error"]
    assert "flow_id" in failed["last_error"]


async def test_a_prefect_that_does_not_answer_is_given_up_on_quickly(
    prefect_objects: PrefectObjects,
    templates: Templates,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow_run = await failed_run(prefect_objects)
    request = request_for(
        emitting(body="{{ flow_run.name }}"), event_about(prefect_objects, flow_run)
    )
    async with Receiver(Reply(hang=True)) as silent:
        with caplog.at_level(logging.WARNING, "tripwire.actions"):
            context = await context_for(
                request, book_for(silent.url("/api")), templates, http, timeout=0.3
            )
        assert len(silent.requests) == 1

    assert templates.render("{{ flow_run.name }}", context, "body") == flow_run["name"]
    [warning] = [r.getMessage() for r in caplog.records if r.name == "tripwire.actions"]
    assert "flow_run: " in warning


async def test_without_a_connection_templates_see_the_labels_as_before(
    prefect_objects: PrefectObjects,
    templates: Templates,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow_run = await failed_run(prefect_objects)
    request = request_for(
        emitting(body="{{ flow_run.name }} {{ flow_run|ui_url }} {{ variables }}"),
        event_about(prefect_objects, flow_run),
    )
    for book in (None, ConnectionBook(PrefectConnections())):
        caplog.clear()
        with caplog.at_level(logging.WARNING, "tripwire.actions"):
            context = await context_for(request, book, templates, http)

        assert context["flow_run"] == template_context(request)["flow_run"]
        text = templates.render(
            "{{ flow_run.name }} {{ flow_run.state.type }} {{ flow_run|ui_url }} {{ variables }}",
            context,
            "body",
        )
        assert text == f"{flow_run['name']} FAILED None {{}}"
        [warning] = [r.getMessage() for r in caplog.records if r.name == "tripwire.actions"]
        assert "no Prefect connection configured" in warning


# --- cost ----------------------------------------------------------------------------


async def test_a_template_naming_no_prefect_object_makes_no_request(
    prefect_objects: PrefectObjects,
    proxy: CountingProxy,
    make_runner: MakeRunner,
    recorder: Recorder,
) -> None:
    flow_run = await failed_run(prefect_objects)
    event = event_about(prefect_objects, flow_run)
    runner = make_runner(book_for(proxy.url))
    plain = request_for(
        emitting(
            body="{{ event.resource.name }} of {{ automation.name }}: {{ labels }} "
            "{{ event.related|length }} related {{ 'flow_run' }} flow_run",
            title="{{ firing.state }}",
        ),
        event,
    )

    assert await runner.run(plain) is None
    assert emitted_payload(recorder)["title"] == "triggered"
    assert not proxy.requests

    # The same proxy counts a request as soon as a template names an object.
    recorder.emitted.clear()
    named = request_for(emitting(body="{{ work_pool.type }}"), event)
    assert await runner.run(named) is None
    assert emitted_payload(recorder)["body"] == "process"
    assert list(proxy.requests.elements()) == ["POST /api/work_pools/filter"]
