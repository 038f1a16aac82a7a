"""A real Airflow 3 (PyPI apache-airflow, in .venv-airflow with tripwire-client installed)
sends its events to a running engine.

The DAGs run in a child process with the Airflow venv's Python (dag.test(), SQLite under a
temporary AIRFLOW_HOME), so the engine keeps serving in this test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from events.filters import EventFilter, EventNameFilter
from events.model import ReceivedEvent
from tests.support import Running, eventually, require_venv

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parent / "airflow_dags"


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    """The Airflow venv's Python; missing = skipped locally, a failure in CI."""
    return require_venv(".venv-airflow", "airflow") / "bin" / "python"


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without AIRFLOW_* and TRIPWIRE_*, with a fresh AIRFLOW_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "TRIPWIRE_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            **extra,
        }
    )
    return env


async def run(args: list[str], env: Mapping[str, str], cwd: Path, timeout: float) -> str:
    """Run a command (bounded in time) and return its stdout; fail with its output."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env), cwd=cwd
    )
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{args[1:]} did not finish within {timeout}s")
    assert process.returncode == 0, f"{args[1:]} failed:\n{stdout.decode()}\n{stderr.decode()}"
    return stdout.decode()


def test_the_client_brings_no_engine_dependencies(airflow_python: Path, tmp_path: Path) -> None:
    """tripwire-client declares no dependencies at all, and the engine is not installed.

    FastAPI, SQLAlchemy, pydantic and aiosqlite are in this venv all the same: Airflow 3
    itself depends on them. So the proof is the client's own metadata (no Requires-Dist),
    the engine's distribution being absent, and the bus stack (FastStream, nats-py) that
    only the engine would bring being absent too. It also checks that the plugin is
    registered through the `airflow.plugins` entry point.
    """
    script = """
import importlib.metadata as md, json
import tripwire_client, tripwire_client.airflow
def installed(name):
    try:
        md.distribution(name)
        return True
    except md.PackageNotFoundError:
        return False
plugins = {e.name: e.value for e in md.entry_points(group="airflow.plugins")}
print(json.dumps({
    "requires": md.requires("tripwire-client"),
    "installed": {n: installed(n) for n in ["tripwire", "faststream", "nats-py", "apache-airflow"]},
    "plugin": plugins.get("tripwire"),
}))
"""
    # cwd: an empty folder, not the checkout, whose tripwire.egg-info would be found.
    out = subprocess.run(
        [str(airflow_python), "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    found = json.loads(out.stdout)
    assert found["requires"] is None
    assert found["installed"] == {
        "tripwire": False,
        "faststream": False,
        "nats-py": False,
        "apache-airflow": True,
    }
    assert found["plugin"] == "tripwire_client.airflow.plugin:TripwirePlugin"


async def wait_for_events(
    running: Running, prefix: str, count: int, timeout: float = 30.0
) -> list[ReceivedEvent]:
    """Wait until `count` events whose names start with `prefix` are stored."""
    flt = EventFilter(event=EventNameFilter(prefix=[prefix]))

    async def read() -> list[ReceivedEvent] | None:
        page = await running.engine.store.read(flt, limit=100)
        return page.events if (page.total or 0) >= count else None

    return await eventually(read, timeout, f"{count} {prefix}* events")


def one(events: list[ReceivedEvent], name: str, resource_id: str) -> ReceivedEvent:
    found = [e for e in events if e.event == name and e.resource.id == resource_id]
    assert len(found) == 1, f"{name} on {resource_id}: {[(e.event, e.resource.id) for e in events]}"
    return found[0]


def related(event: ReceivedEvent) -> list[tuple[str, str]]:
    return [(r.id, r.role) for r in event.related]


@pytest.mark.timeout(300)
async def test_dag_runs_send_their_events_to_tripwire(
    engine: Running, airflow_python: Path, tmp_path: Path
) -> None:
    """One DAG through the listener plugin (a task succeeds, one fails), one through callbacks.

    dag.test() creates its run already running, so Airflow calls no on_dag_run_running
    hook there (the scheduler does, when it starts a queued run): no airflow.dag-run.running.
    """
    env = airflow_env(tmp_path / "airflow", TRIPWIRE_URL=engine.url)
    await run([str(airflow_python), "-m", "airflow", "db", "migrate"], env, tmp_path, 120)
    out = await run(
        [str(airflow_python), str(DAGS / "tripwire_demo.py")], env, tmp_path, timeout=150
    )
    runs: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    failed, succeeded = runs["failed"], runs["succeeded"]

    events = await wait_for_events(engine, "airflow.", count=7)
    dag_run_id = f"airflow.dag-run.tripwire_demo_listener.{failed}"
    task_id = f"airflow.task-instance.tripwire_demo_listener.{failed}"
    tags = [("airflow.tag.nightly", "tag"), ("airflow.tag.sales", "tag")]

    one(events, "airflow.task-instance.running", f"{task_id}.extract")
    one(events, "airflow.task-instance.running", f"{task_id}.load")
    extracted = one(events, "airflow.task-instance.success", f"{task_id}.extract")
    assert related(extracted) == [
        ("airflow.dag.tripwire_demo_listener", "dag"),
        (dag_run_id, "dag-run"),
        *tags,
    ]
    assert extracted.resource["airflow.task_id"] == "extract"
    assert extracted.payload["run_type"] == "manual"
    assert extracted.payload["try_number"] == 1
    assert extracted.payload["logical_date"]
    assert extracted.payload["duration"] >= 0
    assert extracted.payload["error"] is None

    load = one(events, "airflow.task-instance.failed", f"{task_id}.load")
    assert load.payload["error"] == "ValueError: the sales table refused 3 rows"
    assert load.payload["state"] == "failed"

    run_failed = one(events, "airflow.dag-run.failed", dag_run_id)
    assert related(run_failed) == [("airflow.dag.tripwire_demo_listener", "dag"), *tags]
    assert run_failed.payload["run_type"] == "manual"
    assert run_failed.payload["reason"] == "task_failure"
    assert run_failed.payload["duration"] > 0

    # From the callbacks DAG, with the listener switched off: no running event.
    callbacks_run = f"airflow.dag-run.tripwire_demo_callbacks.{succeeded}"
    one(events, "airflow.dag-run.success", callbacks_run)
    published = one(
        events,
        "airflow.task-instance.success",
        f"airflow.task-instance.tripwire_demo_callbacks.{succeeded}.publish",
    )
    assert ("airflow.tag.finance", "tag") in related(published)
    assert len(events) == 7

    # emit_event from inside the `extract` task: related to the task that sent it.
    [own] = await wait_for_events(engine, "sales.extract.done", count=1)
    assert own.resource.id == "sales.table.orders"
    assert own.payload == {"rows": 3}
    assert related(own) == [
        ("airflow.dag.tripwire_demo_listener", "dag"),
        (dag_run_id, "dag-run"),
        (f"{task_id}.extract", "task-instance"),
        *tags,
    ]
