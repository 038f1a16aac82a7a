"""Executors for the actions that act on a Prefect server: run, pause and resume
deployments, work queues and work pools; cancel, suspend, resume, delete or move flow runs.

Targets are found as Prefect's own actions find them (`prefect/server/events/actions.py`):
selected by id (or, in tripwire, by name), or inferred from the first resource of the kind
among the triggering event's resource and related resources. Flow-run actions always act
on the flow run the firing is about.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from pydantic_core import PydanticSerializationError, to_jsonable_python

from actions.connections import ConnectionBook
from actions.errors import ActionFailed
from actions.execution import Execution, Executor, Outcome
from actions.model import (
    CancelFlowRun,
    ChangeFlowRunState,
    DeleteFlowRun,
    PauseDeployment,
    PauseWorkPool,
    PauseWorkQueue,
    ResumeDeployment,
    ResumeFlowRun,
    ResumeWorkPool,
    ResumeWorkQueue,
    RunDeployment,
    SuspendFlowRun,
)
from actions.prefect_api import (
    PrefectAPI,
    PrefectConnection,
    PrefectConnections,
    Target,
    accepted_state,
    find_deployment,
    find_work_pool,
    find_work_queue,
    flow_run_of,
    segment,
)
from events import clock

__all__ = [
    "PREFECT_EXECUTORS",
    "ConnectionBook",
    "PrefectAPI",
    "PrefectConnection",
    "PrefectConnections",
    "cancel_flow_run",
    "change_flow_run_state",
    "connect",
    "delete_flow_run",
    "pause_deployment",
    "pause_work_pool",
    "pause_work_queue",
    "resume_deployment",
    "resume_flow_run",
    "resume_work_pool",
    "resume_work_queue",
    "run_deployment",
    "suspend_flow_run",
]

SUSPEND_TIMEOUT = timedelta(hours=1)  # Prefect's SuspendFlowRun: Suspended(timeout_seconds=3600)


async def connect(run: Execution, name: str | None) -> PrefectAPI:
    """The Prefect server the action names (or the default one), its secrets rendered."""
    book = run.prefect or ConnectionBook()
    return PrefectAPI(book.http or run.http, await book.get(name, run.templates))


# Deployments


def _parameters(action: RunDeployment, run: Execution) -> dict[str, Any]:
    rendered = run.render_value(action.parameters or {}, "parameters")
    try:
        parameters: dict[str, Any] = to_jsonable_python(rendered)
    except PydanticSerializationError as exc:
        raise ActionFailed(f"parameters do not render to JSON: {exc}") from None
    return parameters


async def run_deployment(action: RunDeployment, run: Execution) -> Outcome:
    """Create a flow run of the deployment; the request id is the idempotency key, so a
    redelivered request finds the run it already made."""
    parameters = _parameters(action, run)  # a template error needs no server
    api = await connect(run, action.connection)
    deployment = await find_deployment(api, action, run.request)
    scheduled = clock.now() + action.schedule_after
    body = {
        "state": {
            "type": "SCHEDULED",
            "name": "Scheduled",
            "state_details": {"scheduled_time": scheduled.isoformat()},
        },
        "parameters": parameters,
        "job_variables": action.job_variables,
        "tags": action.tags,
        "idempotency_key": str(run.request.id),
    }
    response = await api.call(
        "POST",
        f"/deployments/{deployment.id}/create_flow_run",
        json=body,
        missing=f"deployment {deployment}",
    )
    flow_run = response.json()
    target = Target("prefect.flow-run", UUID(flow_run["id"]), flow_run.get("name"))
    # Prefect answers 201 for a new run, 200 for the one this idempotency key already made.
    created = response.status_code == 201
    verb = "created" if created else "found (already created)"
    when = ""
    if action.schedule_after:
        when = f", scheduled for {scheduled.isoformat(timespec='seconds')}"
    return Outcome(
        f"{verb} flow run {target} of deployment {deployment}{when}",
        status_code=response.status_code,
        target=target.labels,
        details={"deployment_id": str(deployment.id), "created": created},
    )


async def _switch_deployment(
    action: PauseDeployment | ResumeDeployment, run: Execution, pause: bool
) -> Outcome:
    api = await connect(run, action.connection)
    deployment = await find_deployment(api, action, run.request)
    command = "pause_deployment" if pause else "resume_deployment"
    response = await api.call(
        "POST", f"/deployments/{deployment.id}/{command}", missing=f"deployment {deployment}"
    )
    verb = "paused" if pause else "resumed"
    return Outcome(
        f"{verb} deployment {deployment}",
        status_code=response.status_code,
        target=deployment.labels,
    )


async def pause_deployment(action: PauseDeployment, run: Execution) -> Outcome:
    """Pause the deployment's schedules (Prefect also deletes its auto-scheduled runs)."""
    return await _switch_deployment(action, run, True)


async def resume_deployment(action: ResumeDeployment, run: Execution) -> Outcome:
    """Resume the deployment's schedules."""
    return await _switch_deployment(action, run, False)


# Work queues and work pools


async def _switch_work_queue(
    action: PauseWorkQueue | ResumeWorkQueue, run: Execution, pause: bool
) -> Outcome:
    api = await connect(run, action.connection)
    queue = await find_work_queue(api, action, run.request)
    response = await api.call(
        "PATCH",
        f"/work_queues/{queue.id}",
        json={"is_paused": pause},
        missing=f"work queue {queue}",
    )
    verb = "paused" if pause else "resumed"
    return Outcome(
        f"{verb} work queue {queue}", status_code=response.status_code, target=queue.labels
    )


async def pause_work_queue(action: PauseWorkQueue, run: Execution) -> Outcome:
    """Pause the work queue: workers stop picking up its runs."""
    return await _switch_work_queue(action, run, True)


async def resume_work_queue(action: ResumeWorkQueue, run: Execution) -> Outcome:
    """Resume the work queue."""
    return await _switch_work_queue(action, run, False)


async def _switch_work_pool(
    action: PauseWorkPool | ResumeWorkPool, run: Execution, pause: bool
) -> Outcome:
    api = await connect(run, action.connection)
    pool = await find_work_pool(api, action, run.request)
    assert pool.name is not None
    response = await api.call(
        "PATCH",
        f"/work_pools/{segment(pool.name)}",
        json={"is_paused": pause},
        missing=f"work pool {pool}",
    )
    verb = "paused" if pause else "resumed"
    return Outcome(f"{verb} work pool {pool}", status_code=response.status_code, target=pool.labels)


async def pause_work_pool(action: PauseWorkPool, run: Execution) -> Outcome:
    """Pause the work pool: none of its queues hand out runs."""
    return await _switch_work_pool(action, run, True)


async def resume_work_pool(action: ResumeWorkPool, run: Execution) -> Outcome:
    """Resume the work pool."""
    return await _switch_work_pool(action, run, False)


# Flow runs


async def _set_state(
    run: Execution,
    connection: str | None,
    state: dict[str, Any],
    what: str,
    force: bool = False,
    ends: frozenset[str] = frozenset(),
) -> Outcome:
    api = await connect(run, connection)
    flow_run = flow_run_of(run.request)
    response = await api.call(
        "POST",
        f"/flow_runs/{flow_run.id}/set_state",
        json={"state": state, "force": force},
        missing=f"flow run {flow_run}",
    )
    new = accepted_state(response.json(), f"{what} flow run {flow_run}", ends)
    return Outcome(
        f"asked Prefect to {what} flow run {flow_run}: now {new.get('name')} ({new.get('type')})",
        status_code=response.status_code,
        target=flow_run.labels,
        details={"state": {"type": new.get("type"), "name": new.get("name")}},
    )


def _by(run: Execution) -> str:
    return f"Automation {run.request.automation.id}"  # Prefect's wording


async def cancel_flow_run(action: CancelFlowRun, run: Execution) -> Outcome:
    """Ask Prefect to cancel the run: CANCELLING, so its worker stops it."""
    state = {"type": "CANCELLING", "message": f"Cancelled by {_by(run)}"}
    # A run with no infrastructure yet (Scheduled, Suspended): Prefect rejects CANCELLING
    # and cancels it outright. Prefect's own action reports that as failed; it is done.
    done = frozenset({"CANCELLED"})
    return await _set_state(run, action.connection, state, "cancel", ends=done)


async def suspend_flow_run(action: SuspendFlowRun, run: Execution) -> Outcome:
    """Suspend the run as Prefect does: PAUSED named Suspended, rescheduled on resume,
    timing out after an hour."""
    state = {
        "type": "PAUSED",
        "name": "Suspended",
        "message": f"Suspended by {_by(run)}",
        "state_details": {
            "pause_timeout": (clock.now() + SUSPEND_TIMEOUT).isoformat(),
            "pause_reschedule": True,
        },
    }
    return await _set_state(run, action.connection, state, "suspend")


async def change_flow_run_state(action: ChangeFlowRunState, run: Execution) -> Outcome:
    """Move the run to the given state (force skips Prefect's orchestration rules)."""
    message = run.render(action.message, "message") if action.message else None
    state = {
        "type": action.state.value,
        "name": action.name,
        "message": message or f"State changed by {_by(run)}",
    }
    return await _set_state(run, action.connection, state, "change the state of", action.force)


async def resume_flow_run(action: ResumeFlowRun, run: Execution) -> Outcome:
    """Resume a paused or suspended run."""
    api = await connect(run, action.connection)
    flow_run = flow_run_of(run.request)
    # Read first: Prefect answers a resume of an unknown run with a 500, not a 404.
    found = await api.fetch("GET", f"/flow_runs/{flow_run.id}", missing=f"flow run {flow_run}")
    flow_run = Target(flow_run.kind, flow_run.id, flow_run.name or found.get("name"))
    response = await api.call("POST", f"/flow_runs/{flow_run.id}/resume")
    new = accepted_state(response.json(), f"resume flow run {flow_run}")
    return Outcome(
        f"resumed flow run {flow_run}: now {new.get('name')} ({new.get('type')})",
        status_code=response.status_code,
        target=flow_run.labels,
    )


async def delete_flow_run(action: DeleteFlowRun, run: Execution) -> Outcome:
    """Delete the run (and, in the background, its logs)."""
    api = await connect(run, action.connection)
    flow_run = flow_run_of(run.request)
    try:
        response = await api.call(
            "DELETE", f"/flow_runs/{flow_run.id}", missing=f"flow run {flow_run}"
        )
    except ActionFailed as exc:
        # A retry after an attempt whose answer was lost: the run is gone, as asked.
        if exc.status_code != 404 or run.attempt == 1:
            raise
        return Outcome(
            f"flow run {flow_run} was already deleted", status_code=404, target=flow_run.labels
        )
    return Outcome(
        f"deleted flow run {flow_run}", status_code=response.status_code, target=flow_run.labels
    )


PREFECT_EXECUTORS: dict[str, Executor] = {
    "run-deployment": run_deployment,
    "pause-deployment": pause_deployment,
    "resume-deployment": resume_deployment,
    "pause-work-queue": pause_work_queue,
    "resume-work-queue": resume_work_queue,
    "pause-work-pool": pause_work_pool,
    "resume-work-pool": resume_work_pool,
    "cancel-flow-run": cancel_flow_run,
    "suspend-flow-run": suspend_flow_run,
    "resume-flow-run": resume_flow_run,
    "delete-flow-run": delete_flow_run,
    "change-flow-run-state": change_flow_run_state,
}
