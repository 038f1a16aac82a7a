"""The Airflow listener: DAG-run and task-instance state changes become tripwire events.

Hook implementations take only the arguments that Airflow 2.x (from 2.5, with listeners for
DAG runs) and 3.x both pass: pluggy hands an implementation the subset it names. Airflow 2
adds `session`; Airflow 3 runs the task-instance hooks in the task runner process; only
Airflow 2.10+ and 3.x pass `error` to on_task_instance_failed.

Nothing here may break or slow a DAG: each hook builds an event and queues it on the
background emitter, and anything that goes wrong is logged and swallowed.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from typing import Any

from pluggy import HookimplMarker

from tripwire_client.airflow.events import dag_run_event, task_instance_event
from tripwire_client.config import flush_timeout
from tripwire_client.emitter import default_emitter

log = logging.getLogger("tripwire_client")

# The marker Airflow's own `airflow.listeners.hookimpl` is, without importing Airflow.
hookimpl = HookimplMarker("airflow")

DISABLED_VALUES = frozenset({"0", "false", "no", "off"})


def listener_enabled() -> bool:
    """False when TRIPWIRE_AIRFLOW_LISTENER is 0/false/no/off (e.g. callbacks are used instead)."""
    return os.environ.get("TRIPWIRE_AIRFLOW_LISTENER", "").strip().lower() not in DISABLED_VALUES


def _flush() -> None:
    # A task's process may end (os._exit) right after these hooks: send what it emitted now.
    default_emitter().flush_unless_failing(flush_timeout(2.0))


def _emit(build: Callable[[], dict[str, Any]], *, flush: bool = False) -> None:
    if not listener_enabled():
        return
    try:
        default_emitter().emit(build())
        if flush:
            _flush()
    except Exception:
        log.exception("tripwire: could not emit an Airflow event")


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str | None) -> None:
    """airflow.dag-run.running"""
    _emit(lambda: dag_run_event("running", dag_run, reason=msg))


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str | None) -> None:
    """airflow.dag-run.success"""
    _emit(lambda: dag_run_event("success", dag_run, reason=msg))


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str | None) -> None:
    """airflow.dag-run.failed"""
    _emit(lambda: dag_run_event("failed", dag_run, reason=msg))


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    """airflow.task-instance.running"""
    _emit(lambda: task_instance_event("running", task_instance))


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    """airflow.task-instance.success"""
    _emit(lambda: task_instance_event("success", task_instance), flush=True)


def _failed_spec_passes_error() -> bool:
    """Whether Airflow passes `error` to on_task_instance_failed: 3.x and 2.10+ do."""
    try:
        from airflow.listeners.spec import taskinstance  # Airflow 2 only
    except ImportError:
        return True
    return "error" in inspect.signature(taskinstance.on_task_instance_failed).parameters


def _failed_hook() -> Callable[..., None]:
    # pluggy refuses an implementation that names an argument its spec does not have.
    def with_error(previous_state: Any, task_instance: Any, error: Any) -> None:
        _emit(lambda: task_instance_event("failed", task_instance, error=error), flush=True)

    def without_error(previous_state: Any, task_instance: Any) -> None:
        _emit(lambda: task_instance_event("failed", task_instance), flush=True)

    hook = with_error if _failed_spec_passes_error() else without_error
    hook.__doc__ = "airflow.task-instance.failed (also for a try to be retried: payload.state)"
    return hook


on_task_instance_failed = hookimpl(_failed_hook())


@hookimpl
def before_stopping(component: Any) -> None:
    """Send what is queued before an Airflow component (scheduler, task runner) stops."""
    try:
        _flush()
    except Exception:
        log.exception("tripwire: could not flush events")
