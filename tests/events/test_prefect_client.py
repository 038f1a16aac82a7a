"""Prefect's own client (PyPI `prefect` 3.8, in .venv-prefect) against a running engine.

Each test runs a script from prefect_scripts/ with the Prefect venv's Python as a child
process, so the engine keeps serving in this test's event loop while Prefect talks to it.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import Running, StartEngine, require_venv, stream_ids

pytestmark = pytest.mark.prefect

PREFECT_VENV = Path(__file__).resolve().parents[2] / ".venv-prefect"
PREFECT_PYTHON = PREFECT_VENV / "bin" / "python"
SCRIPTS = Path(__file__).resolve().parent / "prefect_scripts"
SCRIPT_TIMEOUT = 60.0  # importing prefect alone takes seconds


@pytest.fixture(scope="module")
def prefect_python() -> Path:
    """The Prefect venv's Python; missing = skipped locally, a failure in CI."""
    require_venv(".venv-prefect", "prefect")
    return PREFECT_PYTHON


@dataclass
class Finished:
    """A finished script: exit code and output."""

    returncode: int
    stdout: str
    stderr: str

    def ids(self) -> list[str]:
        """The ids from the script's last stdout line, `{"ids": [...]}`."""
        assert self.returncode == 0, (
            f"the script failed ({self.returncode}):\n{self.stdout}\n{self.stderr}"
        )
        lines = self.stdout.strip().splitlines()
        assert lines, f"the script printed nothing:\n{self.stderr}"
        ids: list[str] = json.loads(lines[-1])["ids"]
        return ids


def prefect_env(running: Running, home: Path, **settings: str | None) -> dict[str, str]:
    """This environment without PREFECT_*, pointed at the engine only; None unsets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_API_URL": running.url + "/api",
            "PREFECT_HOME": str(home),
            "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # server side only; belt and braces
            "PREFECT_CLIENT_METRICS_ENABLED": "false",  # no Prometheus port
            "DO_NOT_TRACK": "1",  # Prefect's SDK telemetry
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


async def start_script(
    script: str, args: list[str], env: Mapping[str, str], home: Path
) -> asyncio.subprocess.Process:
    # cwd = an empty folder: Prefect also reads .env, prefect.toml and pyproject.toml there.
    return await asyncio.create_subprocess_exec(
        str(PREFECT_PYTHON),
        str(SCRIPTS / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=home,
    )


async def finish(process: asyncio.subprocess.Process, timeout: float = SCRIPT_TIMEOUT) -> Finished:
    """Wait (bounded) for the script; killed and failed on timeout."""
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"the Prefect script did not finish within {timeout}s")
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


RunPrefect = Callable[..., Awaitable[Finished]]


@pytest.fixture
def prefect_home(tmp_path: Path) -> Path:
    """PREFECT_HOME and working folder of the scripts: empty."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    return home


@pytest.fixture
def run_prefect(prefect_python: Path, prefect_home: Path) -> RunPrefect:
    """Run a script in prefect_scripts/ against an engine; keyword arguments set PREFECT_*."""

    async def run(running: Running, script: str, *args: str, **settings: str | None) -> Finished:
        env = prefect_env(running, prefect_home, **settings)
        return await finish(await start_script(script, list(args), env, prefect_home))

    return run


def spec(name: str, flow_run: str, *, n: int) -> dict[str, Any]:
    """An event as Prefect emits one: resource labels, related resources with roles."""
    return {
        "event": name,
        "resource": {
            "prefect.resource.id": f"prefect.flow-run.{flow_run}",
            "prefect.resource.name": f"run-{n}",
            "prefect.state-name": "Completed",
        },
        "related": [
            {
                "prefect.resource.id": "prefect.flow.0d5f4c1e-4c2b-4b7a-9b3e-2f1c7d8e9a01",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "etl",
            },
            {"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"},
        ],
        "payload": {"n": n, "nested": {"ok": True}},
    }


async def assert_stored(running: Running, ids: list[str], specs: list[dict[str, Any]]) -> None:
    """Every id stored with the name, labels, related resources (roles) and payload sent."""
    assert len(ids) == len(set(ids)) == len(specs)
    await running.wait_stored(len(specs))
    for event_id, sent in zip(ids, specs, strict=True):
        stored = await running.engine.store.get(event_id)
        assert stored is not None, f"event {event_id} ({sent['event']}) is not stored"
        assert str(stored.id) == event_id
        assert stored.event == sent["event"]
        assert dict(stored.resource.items()) == sent["resource"]
        assert [dict(r.items()) for r in stored.related] == sent["related"]
        assert [r.role for r in stored.related] == ["flow", "tag"]
        assert stored.payload == sent["payload"]
    assert await running.engine.store.count() == len(specs)


async def test_emit_event_reaches_the_store_intact(
    engine: Running, run_prefect: RunPrefect
) -> None:
    flow_run = str(uuid.uuid4())
    specs = [
        spec(name, flow_run, n=n)
        for n, name in enumerate(
            ["prefect.flow-run.Pending", "prefect.flow-run.Running", "prefect.flow-run.Completed"]
        )
    ]
    finished = await run_prefect(engine, "emit_event.py", json.dumps(specs))
    await assert_stored(engine, finished.ids(), specs)


def client_events(count: int, prefix: str = "client.sent") -> list[dict[str, Any]]:
    flow_run = str(uuid.uuid4())
    return [{**spec(f"{prefix}.{n}", flow_run, n=n), "id": str(uuid.uuid4())} for n in range(count)]


async def test_prefect_events_client_sends_over_the_websocket(
    engine: Running, run_prefect: RunPrefect
) -> None:
    events = client_events(25)
    finished = await run_prefect(engine, "events_client.py", json.dumps(events))
    ids = finished.ids()
    assert ids == [e["id"] for e in events]  # the ids we chose, not new ones
    await assert_stored(engine, ids, events)


async def test_events_get_in_with_the_right_auth_string(
    start_engine: StartEngine, run_prefect: RunPrefect
) -> None:
    running = await start_engine(api_auth_string="user:pass")
    events = client_events(3)
    finished = await run_prefect(
        running, "events_client.py", json.dumps(events), PREFECT_API_AUTH_STRING="user:pass"
    )
    await assert_stored(running, finished.ids(), events)


@pytest.mark.parametrize(
    ("auth_string", "version_check", "error"),
    [
        # Prefect first GETs /api/admin/version (with Basic auth) and gives up on a 401 ...
        pytest.param("user:wrong", "true", "401 Unauthorized", id="wrong-string"),
        pytest.param(None, "true", "401 Unauthorized", id="no-string"),
        # ... without that check, the websocket's auth message is refused.
        pytest.param("user:wrong", "false", "Unable to authenticate", id="wrong-string-websocket"),
        pytest.param(None, "false", "Unable to authenticate", id="no-string-websocket"),
    ],
)
async def test_events_stay_out_without_the_right_auth_string(
    start_engine: StartEngine,
    run_prefect: RunPrefect,
    auth_string: str | None,
    version_check: str,
    error: str,
) -> None:
    running = await start_engine(api_auth_string="user:pass")
    refused = client_events(3, prefix="client.refused")
    finished = await run_prefect(
        running,
        "events_client.py",
        json.dumps(refused),
        PREFECT_API_AUTH_STRING=auth_string,
        PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED=version_check,
    )
    assert finished.returncode != 0
    assert error in finished.stderr
    # Nothing in flight either: events sent after these (rightly) are all that gets stored.
    accepted = client_events(2)
    ids = (
        await run_prefect(
            running, "events_client.py", json.dumps(accepted), PREFECT_API_AUTH_STRING="user:pass"
        )
    ).ids()
    await assert_stored(running, ids, accepted)
    for event in refused:
        assert await running.engine.store.get(event["id"]) is None


async def post(running: Running, events: list[dict[str, Any]]) -> list[str]:
    async with running.client() as http:
        response = await http.post("/api/events", json=events)
    assert response.status_code == 202, response.text
    accepted: list[str] = response.json()["accepted"]
    return accepted


async def test_prefect_event_subscriber_reads_backfill_then_live(
    engine: Running, prefect_python: Path, prefect_home: Path
) -> None:
    def named(
        name: str, resource: str = "sub.resource", role: str | None = "flow"
    ) -> dict[str, Any]:
        related = [{"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": role}]
        return {
            "event": name,
            "resource": {"prefect.resource.id": resource},
            "related": related if role else [],
            "id": str(uuid.uuid4()),
        }

    # Prefect's filter; the subscriber sends all of it, unset parts as null/[]/false.
    flt = {
        "event": {"name": ["sub.wanted", "sub.also-wanted"]},
        "resource": {"id_prefix": ["sub."]},
        "related": {"role": ["flow"]},
    }
    backfill = await post(
        engine,
        [
            named("sub.wanted"),
            named("sub.other"),
            named("sub.also-wanted"),
            named("sub.wanted", resource="elsewhere"),
            named("sub.wanted", role=None),
            named("sub.wanted"),
        ],
    )
    await engine.wait_stored(len(backfill))
    process = await start_script(
        "subscribe.py",
        ["5", "30", json.dumps(flt)],
        prefect_env(engine, prefect_home),
        prefect_home,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(SCRIPT_TIMEOUT):
            line = await process.stdout.readline()
        assert line.strip() == b"subscribed", line
        live = await post(
            engine,
            [
                named("sub.other"),
                named("sub.wanted"),
                named("sub.also-wanted", resource="elsewhere"),
                named("sub.also-wanted"),
            ],
        )
        finished = await finish(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    got = finished.ids()
    assert len(got) == len(set(got)) == 5
    # the backfill (oldest first), then the live events; the excluded ones nowhere
    assert set(got[:3]) == {backfill[0], backfill[2], backfill[5]}
    assert set(got[3:]) == {live[1], live[3]}


def script_lines(stdout: str) -> dict[str, list[str]]:
    """The JSON lines a checkpointed_client.py run printed, merged."""
    found: dict[str, list[str]] = {}
    for line in stdout.strip().splitlines():
        found.update(json.loads(line))
    return found


async def test_what_prefects_client_counts_as_delivered_is_on_the_stream(
    engine: Running, run_prefect: RunPrefect
) -> None:
    finished = await run_prefect(engine, "checkpointed_client.py", "2100", "700", "0")
    assert finished.returncode == 0, finished.stderr
    delivered = script_lines(finished.stdout)["ids"]
    assert len(delivered) == 2100
    on_stream = await stream_ids(engine.engine.bus)
    assert [i for i in on_stream if i in set(delivered)] == delivered  # all, in order


async def test_prefects_client_vanishing_mid_batch_loses_nothing_it_counted_delivered(
    engine: Running, run_prefect: RunPrefect
) -> None:
    finished = await run_prefect(engine, "checkpointed_client.py", "1400", "700", "300")
    assert finished.returncode == 0, finished.stderr
    printed = script_lines(finished.stdout)
    assert len(printed["ids"]) == 1400
    assert len(printed["unconfirmed"]) == 300
    assert set(printed["ids"]) <= set(await stream_ids(engine.engine.bus))
