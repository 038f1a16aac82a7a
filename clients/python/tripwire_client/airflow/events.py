"""tripwire events from Airflow's DAG runs and task instances (Airflow 2.10+ and 3.x).

Objects are read by attribute name only, never by type: the same code takes Airflow 2's ORM
models, Airflow 3's scheduler models and Airflow 3's task-runner objects. An attribute that
cannot be read (missing, or a detached ORM relationship) is left out, never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from tripwire_client.event import RESOURCE_ID, RESOURCE_NAME, Event, build_event, related_resource

MAX_ERROR_CHARS = 10_000  # a long traceback text must not push the event over its size limit


def _read(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:  # AttributeError, DetachedInstanceError, a failing property
        return None


def as_text(value: Any) -> str | None:
    """Enum members (states, run types) by their value, everything else as text."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _instant(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else as_text(value)


def _seconds(start: Any, end: Any) -> float | None:
    if not isinstance(start, datetime):
        return None
    if not isinstance(end, datetime):
        end = datetime.now(timezone.utc) if start.tzinfo else datetime.now()
    return round(float((end - start).total_seconds()), 3)


def _tag_names(dag: Any) -> list[str]:
    tags = _read(lambda: dag.tags) or ()
    # DAG objects hold strings; Airflow's DagModel holds DagTag rows with a name.
    return sorted({str(getattr(tag, "name", tag)) for tag in tags})


def dag_related(dag_id: str, tags: Iterable[str]) -> list[dict[str, str]]:
    """The DAG (role `dag`) and its tags (role `tag`), as related resources."""
    related = [related_resource(f"airflow.dag.{dag_id}", "dag", **{RESOURCE_NAME: dag_id})]
    related += [related_resource(f"airflow.tag.{tag}", "tag") for tag in tags]
    return related


def dag_run_resource_id(dag_id: str, run_id: str) -> str:
    """airflow.dag-run.<dag_id>.<run_id>"""
    return f"airflow.dag-run.{dag_id}.{run_id}"


def task_instance_resource_id(dag_id: str, run_id: str, task_id: str, map_index: Any) -> str:
    """airflow.task-instance.<dag_id>.<run_id>.<task_id>, plus .<map_index> when mapped."""
    base = f"airflow.task-instance.{dag_id}.{run_id}.{task_id}"
    return f"{base}.{map_index}" if is_mapped(map_index) else base


def is_mapped(map_index: Any) -> bool:
    """Airflow marks an unmapped task instance with map_index -1."""
    return isinstance(map_index, int) and map_index >= 0


def run_related(
    dag_id: str, run_id: str, tags: Iterable[str], task: str | None = None
) -> list[dict[str, str]]:
    """The DAG, its run (role `dag-run`), the task instance `task` if given, the DAG's tags."""
    related = dag_related(dag_id, tags)
    inserted = [
        related_resource(dag_run_resource_id(dag_id, run_id), "dag-run", **{RESOURCE_NAME: run_id})
    ]
    if task is not None:
        inserted.append(related_resource(task, "task-instance"))
    related[1:1] = inserted
    return related


def _dag_of_run(dag_run: Any) -> Any:
    return _read(lambda: dag_run.dag) or _read(lambda: dag_run.dag_model)


def dag_run_event(state: str, dag_run: Any, *, reason: str | None = None, dag: Any = None) -> Event:
    """airflow.dag-run.<state> for a DAG run; `reason` is Airflow's message (`task_failure`)."""
    dag_id, run_id = str(dag_run.dag_id), str(dag_run.run_id)
    start, end = _read(lambda: dag_run.start_date), _read(lambda: dag_run.end_date)
    payload: dict[str, Any] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "state": as_text(_read(lambda: dag_run.state)) or state,
        "run_type": as_text(_read(lambda: dag_run.run_type)),
        "logical_date": _instant(_read(lambda: dag_run.logical_date)),
        "data_interval_start": _instant(_read(lambda: dag_run.data_interval_start)),
        "data_interval_end": _instant(_read(lambda: dag_run.data_interval_end)),
        "start_date": _instant(start),
        "end_date": _instant(end),
        "duration": _seconds(start, end) if state != "running" else None,
        "reason": reason,
    }
    if state == "failed":
        payload["error"] = reason
    return build_event(
        f"airflow.dag-run.{state}",
        {
            RESOURCE_ID: dag_run_resource_id(dag_id, run_id),
            RESOURCE_NAME: run_id,
            "airflow.dag_id": dag_id,
            "airflow.run_id": run_id,
        },
        related=dag_related(dag_id, _tag_names(dag if dag is not None else _dag_of_run(dag_run))),
        payload=payload,
    )


def _dag_run_of(task_instance: Any) -> Any:
    run = _read(lambda: task_instance.dag_run)  # Airflow 2, Airflow 3's scheduler: the ORM row
    if run is None and type(task_instance).__name__ == "RuntimeTaskInstance":
        # Airflow 3's task runner: from the context it built (and cached) for the task.
        run = _read(lambda: task_instance.get_template_context()["dag_run"])
    return run


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return text[:MAX_ERROR_CHARS]


def task_instance_event(
    state: str, task_instance: Any, *, error: Any = None, dag_run: Any = None
) -> Event:
    """airflow.task-instance.<state> for a task instance; `error` is the exception or its text."""
    ti = task_instance
    dag_id, run_id, task_id = str(ti.dag_id), str(ti.run_id), str(ti.task_id)
    map_index = _read(lambda: ti.map_index)
    mapped = is_mapped(map_index)
    labels = {
        RESOURCE_ID: task_instance_resource_id(dag_id, run_id, task_id, map_index),
        RESOURCE_NAME: task_id,
        "airflow.dag_id": dag_id,
        "airflow.run_id": run_id,
        "airflow.task_id": task_id,
    }
    if mapped:
        labels["airflow.map_index"] = str(map_index)
    run = dag_run if dag_run is not None else _dag_run_of(ti)
    task = _read(lambda: ti.task)
    start, end = _read(lambda: ti.start_date), _read(lambda: ti.end_date)
    payload: dict[str, Any] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index if mapped else None,
        "state": as_text(_read(lambda: ti.state)) or state,
        "try_number": _read(lambda: ti.try_number),
        "max_tries": _read(lambda: ti.max_tries),
        "operator": type(task).__name__ if task is not None else None,
        "run_type": as_text(_read(lambda: run.run_type)),
        "logical_date": _instant(_read(lambda: run.logical_date)),
        "start_date": _instant(start),
        "end_date": _instant(end),
        "duration": _seconds(start, end) if state != "running" else None,
        "error": _error_text(error),
    }
    related = run_related(dag_id, run_id, _tag_names(_read(lambda: task.dag)))
    return build_event(f"airflow.task-instance.{state}", labels, related=related, payload=payload)
