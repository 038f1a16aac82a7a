"""Prefect actions against a real Prefect 3.8 server: what each executor asks and what
Prefect then shows through its own API."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from actions.errors import ActionFailed, ActionRetry
from actions.execution import Execution, Outcome
from actions.prefect import PREFECT_EXECUTORS
from actions.prefect_api import PrefectConnection, PrefectConnections
from events.embedded import free_port
from events.model import ReceivedEvent
from tests.actions.conftest import MakeExecution
from tests.actions.prefect_server import PrefectObjects, PrefectServer
from tests.support import FIXTURES

pytestmark = pytest.mark.prefect

EVENTS = [
    json.loads(line)
    for line in (FIXTURES / "flow-run-events.jsonl").read_text().splitlines()
    if line.strip()
]


def fixture_event(name: str) -> dict[str, Any]:
    """The first event called `name` that the real Prefect server stored."""
    return copy.deepcopy(next(e for e in EVENTS if e["event"] == name))


def failed_event(objects: PrefectObjects, flow_run: dict[str, Any]) -> dict[str, Any]:
    """The real `prefect.flow-run.Failed` event, rewritten to be about `flow_run`; a
    deployment's run also relates its deployment, work queue and work pool, as the
    server's events for a deployment run do (its Late event shows them)."""
    event = fixture_event("prefect.flow-run.Failed")
    event["resource"]["prefect.resource.id"] = f"prefect.flow-run.{flow_run['id']}"
    event["resource"]["prefect.resource.name"] = flow_run["name"]
    related = {
        r["prefect.resource.role"]: r for r in fixture_event("prefect.flow-run.Late")["related"]
    }
    ours = {
        "flow": (objects.flow_id, objects.flow_name),
        "deployment": (objects.deployment_id, objects.deployment_name),
        "work-queue": (objects.queue_id, objects.queue_name),
        "work-pool": (objects.pool_id, objects.pool_name),
    }
    event["related"] = []
    for role, (object_id, name) in ours.items():
        labels = related[role]
        kind = labels["prefect.resource.id"].rpartition(".")[0]
        event["related"].append(
            {**labels, "prefect.resource.id": f"{kind}.{object_id}", "prefect.resource.name": name}
        )
    ReceivedEvent.model_validate(event)  # still a valid event
    return event


async def execute(run: Execution) -> Outcome:
    """Run the executor for the run's action type."""
    action = run.request.action
    return await PREFECT_EXECUTORS[action.type](action, run)


def target_id(outcome: Outcome) -> str:
    """The resource id of what the action acted on."""
    assert outcome.target is not None
    return outcome.target["prefect.resource.id"]


# run-deployment


async def test_run_deployment_keeps_parameter_types_and_runs_once_per_request(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    event = {
        "event": "orders.loaded",
        "resource": {"prefect.resource.id": "orders"},
        "payload": {"rows": 42},
    }
    action = {
        "type": "run-deployment",
        "deployment_id": objects.deployment_id,
        "parameters": {
            "rows": "{{ event.payload.rows }}",
            "label": "orders-{{ event.payload.rows }}",
        },
        "tags": ["tripwire"],
    }
    run = make_execution(action, event, prefect=prefect_server.connections())

    first = await execute(run)
    again = await execute(run)  # a redelivered request: same id, same idempotency key

    assert first.status_code == 201
    assert again.status_code == 200
    assert first.target == again.target
    runs = await objects.runs_of_deployment()
    assert len(runs) == 1
    flow_run = runs[0]
    assert first.target == {
        "prefect.resource.id": f"prefect.flow-run.{flow_run['id']}",
        "prefect.resource.name": flow_run["name"],
    }
    assert flow_run["parameters"] == {"rows": 42, "label": "orders-42"}
    assert flow_run["idempotency_key"] == str(run.request.id)
    assert "tripwire" in flow_run["tags"]
    assert flow_run["state"]["type"] == "SCHEDULED"


async def test_run_deployment_by_name_schedules_it_later(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    action = {
        "type": "run-deployment",
        "deployment": f"{objects.flow_name}/{objects.deployment_name}",
        "parameters": {"rows": 7},
        "schedule_after": 3600,
    }
    run = make_execution(action, prefect=prefect_server.connections())

    outcome = await execute(run)

    flow_run = await objects.get(f"/flow_runs/{target_id(outcome).rpartition('.')[2]}")
    assert flow_run["deployment_id"] == objects.deployment_id
    scheduled = datetime.fromisoformat(flow_run["state"]["state_details"]["scheduled_time"])
    assert scheduled - datetime.fromisoformat(flow_run["created"]) > timedelta(minutes=59)
    assert "scheduled for" in outcome.summary


async def test_run_deployment_refused_parameters_fail_with_prefects_reason(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    action = {
        "type": "run-deployment",
        "deployment_id": prefect_objects.deployment_id,
        "parameters": {"rows": "many"},
    }
    run = make_execution(action, prefect=prefect_server.connections())

    with pytest.raises(ActionFailed) as failed:
        await execute(run)

    assert failed.value.status_code == 409
    assert "Error creating flow run" in failed.value.message
    assert "'many' is not of type 'integer'" in failed.value.message


async def test_unknown_deployment_name_fails_naming_it_and_the_server(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    action = {"type": "run-deployment", "deployment": f"{prefect_objects.flow_name}/nope"}
    run = make_execution(action, prefect=prefect_server.connections())

    with pytest.raises(ActionFailed) as failed:
        await execute(run)

    assert failed.value.message == (
        f"deployment {prefect_objects.flow_name}/nope not found on {prefect_server.url}"
    )


async def test_run_deployment_by_its_name_alone_finds_it_whatever_its_flow(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    action = {
        "type": "run-deployment",
        "deployment": objects.deployment_name,
        "parameters": {"rows": 3},
    }

    outcome = await execute(make_execution(action, prefect=prefect_server.connections()))

    (flow_run,) = await objects.runs_of_deployment()
    assert target_id(outcome) == f"prefect.flow-run.{flow_run['id']}"
    assert flow_run["parameters"] == {"rows": 3}
    assert outcome.details["deployment_id"] == objects.deployment_id


async def test_a_deployment_name_several_flows_have_fails_naming_them(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    other = await objects.post("/flows/", {"name": f"{objects.flow_name}-backfill"})
    await objects.post("/deployments/", {"name": objects.deployment_name, "flow_id": other["id"]})
    action = {"type": "run-deployment", "deployment": objects.deployment_name}

    with pytest.raises(ActionFailed) as failed:
        await execute(make_execution(action, prefect=prefect_server.connections()))

    name, flow = objects.deployment_name, objects.flow_name
    assert failed.value.message == (
        f"several flows have a deployment named {name} ({flow}, {flow}-backfill) on "
        f"{prefect_server.url}: name it as flow/deployment, e.g. {flow}/{name}"
    )
    assert await objects.runs_of_deployment() == []


async def test_an_unknown_deployment_name_alone_fails_naming_it(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    action = {"type": "run-deployment", "deployment": "no-such-deployment"}

    with pytest.raises(ActionFailed) as failed:
        await execute(make_execution(action, prefect=prefect_server.connections()))

    assert failed.value.message == (
        f"deployment no-such-deployment not found on {prefect_server.url}"
    )


# pause / resume


async def test_pause_and_resume_deployment(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    path = f"/deployments/{objects.deployment_id}"
    by_name = f"{objects.flow_name}/{objects.deployment_name}"

    paused = await execute(
        make_execution(
            {"type": "pause-deployment", "deployment": by_name},
            prefect=prefect_server.connections(),
        )
    )
    assert (await objects.get(path))["paused"] is True
    assert paused.target == {
        "prefect.resource.id": f"prefect.deployment.{objects.deployment_id}",
        "prefect.resource.name": objects.deployment_name,
    }
    await execute(
        make_execution(
            {"type": "resume-deployment", "deployment_id": objects.deployment_id},
            prefect=prefect_server.connections(),
        )
    )
    assert (await objects.get(path))["paused"] is False


@pytest.mark.parametrize("by", ["id", "name in pool", "name alone"])
async def test_pause_and_resume_work_queue(
    by: str,
    make_execution: MakeExecution,
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
) -> None:
    objects = prefect_objects
    target: dict[str, Any] = {
        "id": {"work_queue_id": objects.queue_id},
        "name in pool": {
            "work_queue_name": objects.queue_name,
            "work_pool_name": objects.pool_name,
        },
        "name alone": {"work_queue_name": objects.queue_name},
    }[by]
    path = f"/work_queues/{objects.queue_id}"

    outcome = await execute(
        make_execution({"type": "pause-work-queue", **target}, prefect=prefect_server.connections())
    )
    assert (await objects.get(path))["is_paused"] is True
    assert target_id(outcome) == f"prefect.work-queue.{objects.queue_id}"
    await execute(
        make_execution(
            {"type": "resume-work-queue", **target}, prefect=prefect_server.connections()
        )
    )
    assert (await objects.get(path))["is_paused"] is False


async def test_work_queue_name_in_several_pools_asks_for_the_pool(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    other = await objects.post(
        "/work_pools/", {"name": f"{objects.pool_name}-b", "type": "process"}
    )
    await objects.post(f"/work_pools/{other['name']}/queues", {"name": objects.queue_name})
    action = {"type": "pause-work-queue", "work_queue_name": objects.queue_name}

    with pytest.raises(ActionFailed, match=r"in several work pools .*: set work_pool_name"):
        await execute(make_execution(action, prefect=prefect_server.connections()))


@pytest.mark.parametrize("by", ["name", "id"])
async def test_pause_and_resume_work_pool(
    by: str,
    make_execution: MakeExecution,
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
) -> None:
    objects = prefect_objects
    target = (
        {"work_pool_name": objects.pool_name} if by == "name" else {"work_pool_id": objects.pool_id}
    )
    path = f"/work_pools/{objects.pool_name}"

    outcome = await execute(
        make_execution({"type": "pause-work-pool", **target}, prefect=prefect_server.connections())
    )
    assert (await objects.get(path))["is_paused"] is True
    assert outcome.target == {
        "prefect.resource.id": f"prefect.work-pool.{objects.pool_id}",
        "prefect.resource.name": objects.pool_name,
    }
    await execute(
        make_execution({"type": "resume-work-pool", **target}, prefect=prefect_server.connections())
    )
    assert (await objects.get(path))["is_paused"] is False


# flow runs: always the one the event is about


async def test_cancel_flow_run_cancels_a_scheduled_run_and_marks_a_running_one_cancelling(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    scheduled = await objects.flow_run()
    running = await objects.flow_run("RUNNING")

    for flow_run in (scheduled, running):
        run = make_execution(
            {"type": "cancel-flow-run"},
            failed_event(objects, flow_run),
            prefect=prefect_server.connections(),
        )
        outcome = await execute(run)
        assert outcome.target == {
            "prefect.resource.id": f"prefect.flow-run.{flow_run['id']}",
            "prefect.resource.name": flow_run["name"],
        }

    # Prefect cancels a run with nothing running at once; a running one is asked to stop.
    assert (await objects.get(f"/flow_runs/{scheduled['id']}"))["state"]["type"] == "CANCELLED"
    state = (await objects.get(f"/flow_runs/{running['id']}"))["state"]
    assert state["type"] == "CANCELLING"
    assert state["message"] == f"Cancelled by Automation {run.request.automation.id}"


async def test_change_flow_run_state_with_a_rendered_message(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    flow_run = await objects.flow_run("RUNNING")
    action = {
        "type": "change-flow-run-state",
        "state": "FAILED",
        "name": "Stalled",
        "message": "{{ automation.name }} gave up on {{ event.resource['prefect.resource.name'] }}",
    }
    run = make_execution(
        action, failed_event(objects, flow_run), prefect=prefect_server.connections()
    )

    outcome = await execute(run)

    state = (await objects.get(f"/flow_runs/{flow_run['id']}"))["state"]
    assert (state["type"], state["name"]) == ("FAILED", "Stalled")
    assert state["message"] == f"etl-watch gave up on {flow_run['name']}"
    assert outcome.details["state"] == {"type": "FAILED", "name": "Stalled"}


async def test_suspend_then_resume_a_running_flow_run(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    flow_run = await objects.flow_run("RUNNING")
    event = failed_event(objects, flow_run)
    path = f"/flow_runs/{flow_run['id']}"

    await execute(
        make_execution({"type": "suspend-flow-run"}, event, prefect=prefect_server.connections())
    )
    state = (await objects.get(path))["state"]
    assert (state["type"], state["name"]) == ("PAUSED", "Suspended")
    assert state["state_details"]["pause_reschedule"] is True
    assert state["state_details"]["pause_timeout"] is not None

    await execute(
        make_execution({"type": "resume-flow-run"}, event, prefect=prefect_server.connections())
    )
    state = (await objects.get(path))["state"]
    # A suspended run goes back to its worker: Prefect reschedules it.
    assert (state["type"], state["name"]) == ("SCHEDULED", "Resuming")


async def test_orchestration_refusals_fail_with_prefects_reason(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    event = failed_event(objects, await objects.flow_run())  # Scheduled, not running

    with pytest.raises(
        ActionFailed, match=r"\(REJECT\): Cannot suspend flows that are not currently"
    ):
        await execute(
            make_execution(
                {"type": "suspend-flow-run"}, event, prefect=prefect_server.connections()
            )
        )
    with pytest.raises(
        ActionFailed, match=r"\(ABORT\): Cannot resume a flow run that is not paused"
    ):
        await execute(
            make_execution({"type": "resume-flow-run"}, event, prefect=prefect_server.connections())
        )


async def test_delete_flow_run(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    flow_run = await objects.flow_run()
    event = failed_event(objects, flow_run)

    outcome = await execute(
        make_execution({"type": "delete-flow-run"}, event, prefect=prefect_server.connections())
    )

    assert outcome.status_code == 204
    response = await objects.http.get(f"{objects.url}/flow_runs/{flow_run['id']}")
    assert response.status_code == 404
    with pytest.raises(ActionFailed, match=f"flow run {flow_run['name']} not found on"):
        await execute(
            make_execution({"type": "delete-flow-run"}, event, prefect=prefect_server.connections())
        )
    # A retry of a delete whose answer was lost: gone, as asked.
    retried = make_execution(
        {"type": "delete-flow-run"}, event, prefect=prefect_server.connections(), attempt=2
    )
    assert "already deleted" in (await execute(retried)).summary


async def test_flow_run_from_the_firing_labels_without_an_event(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    flow_run = await prefect_objects.flow_run()
    labels = {"prefect.resource.id": f"prefect.flow-run.{flow_run['id']}"}
    run = make_execution(
        {"type": "cancel-flow-run"}, labels=labels, prefect=prefect_server.connections()
    )

    await execute(run)

    state = (await prefect_objects.get(f"/flow_runs/{flow_run['id']}"))["state"]
    assert state["type"] == "CANCELLED"


async def test_flow_run_actions_find_the_run_among_related_resources(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    # The real task-run Failed event: the resource is the task run, its flow run is related.
    flow_run = await prefect_objects.flow_run("RUNNING")
    event = fixture_event("prefect.task-run.Failed")
    event["related"][0]["prefect.resource.id"] = f"prefect.flow-run.{flow_run['id']}"
    run = make_execution({"type": "cancel-flow-run"}, event, prefect=prefect_server.connections())

    outcome = await execute(run)

    assert outcome.target == {
        "prefect.resource.id": f"prefect.flow-run.{flow_run['id']}",
        "prefect.resource.name": "tuscan-guppy",  # the event's name for it
    }
    state = (await prefect_objects.get(f"/flow_runs/{flow_run['id']}"))["state"]
    assert state["type"] == "CANCELLING"


# source: inferred, from a real event


async def test_inferred_targets_come_from_the_events_related_resources(
    make_execution: MakeExecution, prefect_server: PrefectServer, prefect_objects: PrefectObjects
) -> None:
    objects = prefect_objects
    event = failed_event(objects, await objects.flow_run("RUNNING"))

    for kind in ("deployment", "work-queue", "work-pool"):
        run = make_execution(
            {"type": f"pause-{kind}", "source": "inferred"},
            event,
            prefect=prefect_server.connections(),
        )
        outcome = await execute(run)
        assert target_id(outcome).startswith(f"prefect.{kind}.")
    assert (await objects.get(f"/deployments/{objects.deployment_id}"))["paused"] is True
    assert (await objects.get(f"/work_queues/{objects.queue_id}"))["is_paused"] is True
    assert (await objects.get(f"/work_pools/{objects.pool_name}"))["is_paused"] is True

    rerun = make_execution(
        {"type": "run-deployment", "source": "inferred", "parameters": {"rows": 2}},
        event,
        prefect=prefect_server.connections(),
    )
    await execute(rerun)
    assert len(await objects.runs_of_deployment()) == 2


@pytest.mark.parametrize(
    ("action", "label"),
    [
        ({"type": "pause-deployment", "source": "inferred"}, "prefect.deployment"),
        ({"type": "pause-work-queue", "source": "inferred"}, "prefect.work-queue"),
        ({"type": "resume-work-pool", "source": "inferred"}, "prefect.work-pool"),
        ({"type": "run-deployment", "source": "inferred"}, "prefect.deployment"),
    ],
)
async def test_missing_inferred_target_fails_naming_the_label(
    action: dict[str, Any], label: str, make_execution: MakeExecution
) -> None:
    # The real Failed event of a run without a deployment relates only its flow.
    event = fixture_event("prefect.flow-run.Failed")
    unused = PrefectConnections(
        default=PrefectConnection(api_url=f"http://127.0.0.1:{free_port()}/api")
    )

    with pytest.raises(ActionFailed) as failed:
        await execute(make_execution(action, event, prefect=unused))

    assert failed.value.message == (
        f"source is inferred but the triggering event has no {label}.* resource "
        "(looked at its resource and related resources)"
    )


async def test_flow_run_action_on_an_event_about_no_flow_run_fails(
    make_execution: MakeExecution,
) -> None:
    event = {"event": "orders.loaded", "resource": {"prefect.resource.id": "orders"}}
    unused = PrefectConnections(default=PrefectConnection(api_url="http://127.0.0.1:9/api"))

    with pytest.raises(ActionFailed, match=r"no prefect\.flow-run\.\* resource to act on"):
        await execute(make_execution({"type": "cancel-flow-run"}, event, prefect=unused))


# connections


async def test_unreachable_server_is_worth_a_retry(make_execution: MakeExecution) -> None:
    closed = PrefectConnections(
        default=PrefectConnection(api_url=f"http://127.0.0.1:{free_port()}/api")
    )
    action = {"type": "pause-work-pool", "work_pool_name": "default"}

    with pytest.raises(ActionRetry, match="was unreachable"):
        await execute(make_execution(action, prefect=closed))


async def test_missing_connection_fails_saying_what_to_configure(
    make_execution: MakeExecution,
) -> None:
    action = {"type": "pause-work-pool", "work_pool_name": "default"}
    with pytest.raises(
        ActionFailed, match="no Prefect server configured: set TRIPWIRE_PREFECT_API_URL"
    ):
        await execute(make_execution(action, prefect=None))

    named = PrefectConnections(named={"prod": PrefectConnection(api_url="http://127.0.0.1:9/api")})
    with pytest.raises(ActionFailed, match="no Prefect connection named 'staging'; known: prod"):
        await execute(make_execution({**action, "connection": "staging"}, prefect=named))


def test_auth_headers_follow_prefects_client() -> None:
    basic = PrefectConnection(
        api_url="http://p/api", auth_string=SecretStr("user:pass"), api_key=SecretStr("k")
    )
    bearer = PrefectConnection(api_url="http://p/api/", api_key=SecretStr("pnu_k"))

    assert basic.headers() == {"Authorization": "Basic dXNlcjpwYXNz"}
    assert bearer.headers() == {"Authorization": "Bearer pnu_k"}
    assert bearer.api_url == "http://p/api"
    assert "pnu_k" not in repr(bearer)


def test_every_prefect_action_type_has_an_executor() -> None:
    assert set(PREFECT_EXECUTORS) == {
        "run-deployment",
        "pause-deployment",
        "resume-deployment",
        "pause-work-queue",
        "resume-work-queue",
        "pause-work-pool",
        "resume-work-pool",
        "cancel-flow-run",
        "suspend-flow-run",
        "resume-flow-run",
        "delete-flow-run",
        "change-flow-run-state",
    }
