"""Plain Airflow callbacks, and emit_event for use inside any task.

    from tripwire_client.airflow import tripwire_callback
    DAG(..., on_failure_callback=tripwire_callback(), on_success_callback=tripwire_callback())
    PythonOperator(..., on_failure_callback=tripwire_callback())

The callbacks send the same events as the listener plugin; use one or the other (set
TRIPWIRE_AIRFLOW_LISTENER=false to keep the plugin quiet), or both events come twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from tripwire_client.airflow.events import (
    as_text,
    dag_run_event,
    run_related,
    task_instance_event,
    task_instance_resource_id,
)
from tripwire_client.config import flush_timeout
from tripwire_client.emitter import Emitter, default_emitter
from tripwire_client.event import Event

log = logging.getLogger("tripwire_client")

Context = Mapping[str, Any]
FAILED_TASK_STATES = frozenset({"failed", "up_for_retry", "upstream_failed"})


def _task_state(context: Context) -> str:
    if context.get("exception") is not None:
        return "failed"
    state = as_text(getattr(context.get("task_instance") or context.get("ti"), "state", None))
    if state in FAILED_TASK_STATES:
        return "failed"
    if state in (None, "running", "queued", "scheduled"):
        return "running"  # on_execute_callback
    return state  # success; skipped from on_skipped_callback


def _dag_state(context: Context) -> str:
    state = as_text(getattr(context.get("dag_run"), "state", None))
    if state in ("success", "failed"):
        return state
    return "success" if context.get("reason") == "success" else "failed"


def _dag_run(context: Context) -> Any:
    if context.get("dag_run") is not None:
        return context["dag_run"]
    # Airflow 3's minimal DAG-callback context: the DAG and the run id only.
    return SimpleNamespace(dag_id=context["dag"].dag_id, run_id=context["run_id"])


def event_from_context(context: Context, state: str | None = None) -> Event:
    """The event a callback sends: a DAG run's (DAG callbacks) or a task instance's."""
    # Airflow passes `reason` to DAG callbacks only, in 2.x and 3.x.
    if "reason" in context:
        reason = context.get("reason")
        return dag_run_event(
            state or _dag_state(context),
            _dag_run(context),
            reason=str(reason) if reason is not None else None,
            dag=context.get("dag"),
        )
    return task_instance_event(
        state or _task_state(context),
        context.get("task_instance") or context["ti"],
        error=context.get("exception"),
        dag_run=context.get("dag_run"),
    )


def tripwire_callback(
    state: str | None = None, *, emitter: Emitter | None = None
) -> Callable[[Context], None]:
    """A callback for a task's or a DAG's on_success/on_failure/on_retry/on_execute_callback.

    The state (running, success, failed) comes from the context unless given.
    """

    def callback(context: Context) -> None:
        try:
            sender = emitter or default_emitter()
            sender.emit(event_from_context(context, state))
            # Task processes may end right after their callbacks: send now (bounded).
            sender.flush_unless_failing(flush_timeout(2.0))
        except Exception:
            log.exception("tripwire: the Airflow callback could not emit its event")

    return callback


def _current_context() -> Context | None:
    try:
        from airflow.sdk import get_current_context  # Airflow 3
    except ImportError:
        try:
            from airflow.operators.python import get_current_context  # Airflow 2
        except ImportError:
            return None
    try:
        context: Context = get_current_context()
    except Exception:  # not inside a running task
        return None
    return context


def task_related(context: Context) -> list[dict[str, str]]:
    """The running task's DAG, DAG run, task instance and DAG tags, as related resources."""
    ti = context.get("task_instance") or context.get("ti")
    if ti is None:
        return []
    dag_id, run_id = str(ti.dag_id), str(ti.run_id)
    task = task_instance_resource_id(dag_id, run_id, str(ti.task_id), getattr(ti, "map_index", -1))
    tags = sorted(str(t) for t in (getattr(context.get("dag"), "tags", None) or ()))
    return run_related(dag_id, run_id, tags, task=task)


def emit_event(
    event: str,
    resource: Mapping[str, str] | str,
    *,
    related: Iterable[Mapping[str, str]] = (),
    payload: Mapping[str, Any] | None = None,
) -> str | None:
    """Queue an event from inside a task, related to its DAG, DAG run and task; never raises.

    Outside a task it is the plain `tripwire_client.emit_event`.
    """
    try:
        context = _current_context()
        extra = task_related(context) if context is not None else []
    except Exception:
        log.exception("tripwire: could not read the task's context")
        extra = []
    return default_emitter().emit_event(
        event, resource, related=[*related, *extra], payload=payload
    )
