"""Airflow events, the listener hooks and the callbacks, on stand-in objects (no Airflow here).

The real Airflow run is tests/clients/python/test_airflow.py; these pin the details it cannot
reach cheaply: mapped tasks, Airflow 2's hook signatures, DAG callbacks' minimal context.
"""

from __future__ import annotations

import inspect
import sys
from datetime import UTC, datetime, timedelta
from enum import Enum
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

import tripwire_client.emitter
from tripwire_client.airflow import dag_run_event, event_from_context, listener, task_instance_event
from tripwire_client.airflow.callbacks import emit_event, tripwire_callback

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

# The hook specifications of Airflow 2.10 (airflow/listeners/spec/*.py), which pass `session`
# too; Airflow 3's are checked against the installed Airflow in test_airflow.py.
AIRFLOW_2_10_SPECS = {
    "on_dag_run_running": {"dag_run", "msg"},
    "on_dag_run_success": {"dag_run", "msg"},
    "on_dag_run_failed": {"dag_run", "msg"},
    "on_task_instance_running": {"previous_state", "task_instance", "session"},
    "on_task_instance_success": {"previous_state", "task_instance", "session"},
    "on_task_instance_failed": {"previous_state", "task_instance", "error", "session"},
    "before_stopping": {"component"},
}


class State(Enum):
    """Airflow's states are enums; events carry their values."""

    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    SUCCESS = "success"


class Detached:
    """An ORM relationship read outside its session: every access raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("DetachedInstanceError")


def dag(*tags: Any) -> SimpleNamespace:
    return SimpleNamespace(dag_id="sales", tags=list(tags))


def dag_run(**fields: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "dag_id": "sales",
        "run_id": "scheduled__2026-11-21",
        "run_type": SimpleNamespace(value="scheduled"),
        "logical_date": START,
        "start_date": START,
        "end_date": START + timedelta(minutes=2),
        "state": State.FAILED,
        "dag": dag("nightly", "finance"),
    }
    return SimpleNamespace(**{**values, **fields})


def task_instance(**fields: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "dag_id": "sales",
        "run_id": "scheduled__2026-11-21",
        "task_id": "load",
        "map_index": -1,
        "try_number": 2,
        "max_tries": 3,
        "state": State.UP_FOR_RETRY,
        "start_date": START,
        "end_date": START + timedelta(seconds=90),
        "task": SimpleNamespace(dag=dag("nightly")),
        "dag_run": dag_run(),
    }
    return SimpleNamespace(**{**values, **fields})


def related_ids(event: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["prefect.resource.id"], r["prefect.resource.role"]) for r in event["related"]]


def test_task_instance_event_names_its_resources_and_payload() -> None:
    event = task_instance_event("failed", task_instance(), error=ValueError("no rows"))
    assert event["event"] == "airflow.task-instance.failed"
    assert event["resource"] == {
        "prefect.resource.id": "airflow.task-instance.sales.scheduled__2026-11-21.load",
        "prefect.resource.name": "load",
        "airflow.dag_id": "sales",
        "airflow.run_id": "scheduled__2026-11-21",
        "airflow.task_id": "load",
    }
    assert related_ids(event) == [
        ("airflow.dag.sales", "dag"),
        ("airflow.dag-run.sales.scheduled__2026-11-21", "dag-run"),
        ("airflow.tag.nightly", "tag"),
    ]
    payload = event["payload"]
    assert payload["state"] == "up_for_retry"  # a try that will be retried
    assert (payload["try_number"], payload["max_tries"]) == (2, 3)
    assert (payload["run_type"], payload["logical_date"]) == ("scheduled", START.isoformat())
    assert payload["duration"] == 90.0
    assert payload["error"] == "ValueError: no rows"


def test_mapped_task_instance_gets_its_map_index_and_detached_rows_are_skipped() -> None:
    ti = task_instance(map_index=4, dag_run=Detached(), task=Detached(), end_date=None)
    event = task_instance_event("running", ti)
    assert event["resource"]["prefect.resource.id"].endswith(".load.4")
    assert event["resource"]["airflow.map_index"] == "4"
    assert event["payload"]["map_index"] == 4
    assert event["payload"]["run_type"] is None
    assert event["payload"]["duration"] is None
    assert related_ids(event)[2:] == []  # no DAG object: no tags, and no error either


def test_dag_run_event_with_tags_as_rows() -> None:
    tag_rows = [SimpleNamespace(name="nightly"), SimpleNamespace(name="finance")]
    run = dag_run(dag=None, dag_model=SimpleNamespace(tags=tag_rows))
    event = dag_run_event("failed", run, reason="task_failure")
    assert event["event"] == "airflow.dag-run.failed"
    assert event["resource"]["prefect.resource.id"] == "airflow.dag-run.sales.scheduled__2026-11-21"
    assert related_ids(event) == [
        ("airflow.dag.sales", "dag"),
        ("airflow.tag.finance", "tag"),
        ("airflow.tag.nightly", "tag"),
    ]
    assert event["payload"]["duration"] == 120.0
    assert event["payload"]["error"] == event["payload"]["reason"] == "task_failure"


def test_hooks_take_only_arguments_airflow_2_10_also_passes() -> None:
    for name, spec_arguments in AIRFLOW_2_10_SPECS.items():
        hook = getattr(listener, name)
        assert set(inspect.signature(hook).parameters) <= spec_arguments, name


def test_before_airflow_2_10_the_failed_hook_takes_no_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def on_task_instance_failed(previous_state: Any, task_instance: Any, session: Any) -> None:
        """Airflow 2.5-2.9's spec."""

    spec = ModuleType("airflow.listeners.spec.taskinstance")
    spec.on_task_instance_failed = on_task_instance_failed  # type: ignore[attr-defined]
    for name in ("airflow", "airflow.listeners", "airflow.listeners.spec"):
        monkeypatch.setitem(sys.modules, name, ModuleType(name))
    monkeypatch.setitem(sys.modules, spec.__name__, spec)
    monkeypatch.setattr(sys.modules["airflow.listeners.spec"], "taskinstance", spec, raising=False)
    hook = listener._failed_hook()
    assert list(inspect.signature(hook).parameters) == ["previous_state", "task_instance"]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the process-wide emitter would send, captured instead of sent."""
    captured: list[dict[str, Any]] = []
    emitter = tripwire_client.emitter.Emitter("http://127.0.0.1:1")
    monkeypatch.setattr(emitter, "emit", captured.append)
    monkeypatch.setattr(tripwire_client.emitter, "_default", emitter)
    return captured


def test_listener_hooks_emit_and_never_raise(sent: list[dict[str, Any]]) -> None:
    listener.on_task_instance_running(previous_state=None, task_instance=task_instance())
    listener.on_task_instance_failed(
        previous_state=None, task_instance=task_instance(), error="boom"
    )
    listener.on_dag_run_success(dag_run=dag_run(state=State.SUCCESS), msg="success")
    listener.on_dag_run_failed(dag_run=object(), msg="broken")  # logged, not raised
    assert [e["event"] for e in sent] == [
        "airflow.task-instance.running",
        "airflow.task-instance.failed",
        "airflow.dag-run.success",
    ]


def test_listener_can_be_switched_off(
    sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIPWIRE_AIRFLOW_LISTENER", "false")
    listener.on_dag_run_running(dag_run=dag_run(), msg="started")
    assert sent == []


def test_task_callbacks_take_the_state_from_the_context(sent: list[dict[str, Any]]) -> None:
    ti = task_instance(state=State.SUCCESS)
    tripwire_callback()({"task_instance": ti, "dag_run": dag_run()})
    tripwire_callback()({"ti": ti, "exception": KeyError("x")})
    tripwire_callback("running")({"ti": ti})
    assert [e["event"] for e in sent] == [
        "airflow.task-instance.success",
        "airflow.task-instance.failed",
        "airflow.task-instance.running",
    ]
    assert sent[1]["payload"]["error"] == "KeyError: 'x'"


def test_dag_callbacks_work_on_airflow_3s_minimal_context(sent: list[dict[str, Any]]) -> None:
    context = {"dag": dag("finance"), "run_id": "manual__1", "reason": "task_failure"}
    tripwire_callback()(context)
    tripwire_callback()({**context, "reason": "success"})
    tripwire_callback()({"reason": "oops"})  # no DAG: logged, not raised
    assert [e["event"] for e in sent] == ["airflow.dag-run.failed", "airflow.dag-run.success"]
    assert sent[0]["resource"]["prefect.resource.id"] == "airflow.dag-run.sales.manual__1"
    assert related_ids(sent[0]) == [("airflow.dag.sales", "dag"), ("airflow.tag.finance", "tag")]


def test_dag_callback_uses_the_runs_state_when_the_context_has_it() -> None:
    run = dag_run(state=State.SUCCESS)
    event = event_from_context({"dag_run": run, "reason": "whatever"})
    assert event["event"] == "airflow.dag-run.success"


def test_emit_event_outside_a_task_is_a_plain_event(sent: list[dict[str, Any]]) -> None:
    emit_event("sales.table.checked", "sales.table.orders", payload={"rows": 3})
    [event] = sent
    assert event["related"] == []
    assert event["payload"] == {"rows": 3}
