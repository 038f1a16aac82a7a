"""A real Prefect server (PyPI `prefect` 3.8 in .venv-prefect) for the Prefect action tests:
one per session on a free port, with its own PREFECT_HOME and SQLite file, stopped by pid.

Import the fixtures into a test module:
`from tests.actions.prefect_server import prefect_objects, prefect_server  # noqa: F401`.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from actions.prefect_api import PrefectConnection, PrefectConnections
from events.embedded import free_port
from tests.support import require_venv

PREFECT_VENV = Path(__file__).resolve().parents[2] / ".venv-prefect"
PREFECT = PREFECT_VENV / "bin" / "prefect"
START_TIMEOUT = 60.0  # importing Prefect and migrating its SQLite file take ~10 s
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class PrefectServer:
    """A running Prefect server: `url` is its API root (…/api)."""

    url: str
    log: Path

    def connections(self) -> PrefectConnections:
        """Connections whose default is this server."""
        return PrefectConnections(default=PrefectConnection(api_url=self.url))


def _log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"the Prefect server exited ({process.returncode}) while starting; "
                    f"its log ({log}):\n{_log_tail(log)}"
                )
            try:
                if client.get(f"{url}/health").is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    pytest.fail(f"the Prefect server was not healthy within {START_TIMEOUT:g}s:\n{_log_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """`prefect server start` for the session; missing venv = skipped locally, failed in CI."""
    require_venv(".venv-prefect", "prefect")
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",  # say why in the log, not just 503
            "DO_NOT_TRACK": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    log = home / "server.log"
    with log.open("wb") as out:
        # cwd = an empty folder: Prefect also reads .env and prefect.toml there.
        # No services: orchestration rules live in the API; the services (event persister,
        # late runs, scheduler...) would only race our writes for SQLite's one write lock
        # ("database is locked", a 503) and move states behind the tests' backs.
        command = [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(
            [*command, "--no-services"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=home,
        )
    try:
        _wait_healthy(process, url, log)
        yield PrefectServer(url, log)
    finally:
        _stop(process)


@dataclass
class PrefectObjects:
    """A flow, a process work pool with a queue, and a deployment of the flow on it."""

    http: httpx.AsyncClient
    url: str
    flow_id: str
    flow_name: str
    pool_id: str
    pool_name: str
    queue_id: str
    queue_name: str
    deployment_id: str
    deployment_name: str

    async def get(self, path: str) -> Any:
        """GET from the server, as JSON."""
        response = await self.http.get(self.url + path)
        response.raise_for_status()
        return response.json()

    async def post(self, path: str, body: Any = None) -> Any:
        """POST to the server, as JSON."""
        response = await self.http.post(self.url + path, json=body)
        response.raise_for_status()
        return response.json()

    async def flow_run(self, state: str | None = None) -> dict[str, Any]:
        """A new (Scheduled) run of the deployment, forced into `state` when given."""
        run: dict[str, Any] = await self.post(
            f"/deployments/{self.deployment_id}/create_flow_run", {"parameters": {"rows": 1}}
        )
        if state is not None:
            result = await self.post(
                f"/flow_runs/{run['id']}/set_state", {"state": {"type": state}, "force": True}
            )
            assert result["status"] == "ACCEPT", result
        return run

    async def runs_of_deployment(self) -> list[dict[str, Any]]:
        """Every flow run of the deployment."""
        body = {"flow_runs": {"deployment_id": {"any_": [self.deployment_id]}}}
        runs: list[dict[str, Any]] = await self.post("/flow_runs/filter", body)
        return runs


PARAMETER_SCHEMA = {
    "title": "Parameters",
    "type": "object",
    "properties": {
        "rows": {"title": "rows", "type": "integer"},
        "label": {"title": "label", "type": "string"},
    },
    "required": ["rows"],
}


@pytest.fixture
async def prefect_objects(prefect_server: PrefectServer, http: httpx.AsyncClient) -> PrefectObjects:
    """Fresh objects with unique names, made through the REST API; the deployment enforces
    its parameter schema (rows: integer), so a parameter that lost its type is refused."""
    url = prefect_server.url
    suffix = uuid.uuid4().hex[:8]

    async def post(path: str, body: Any) -> Any:
        response = await http.post(url + path, json=body)
        assert response.is_success, f"POST {path}: {response.status_code} {response.text}"
        return response.json()

    flow = await post("/flows/", {"name": f"etl-{suffix}"})
    pool = await post("/work_pools/", {"name": f"pool-{suffix}", "type": "process"})
    queue = await post(f"/work_pools/{pool['name']}/queues", {"name": f"queue-{suffix}"})
    deployment = await post(
        "/deployments/",
        {
            "name": f"prod-{suffix}",
            "flow_id": flow["id"],
            "work_pool_name": pool["name"],
            "work_queue_name": queue["name"],
            "parameter_openapi_schema": PARAMETER_SCHEMA,
            "enforce_parameter_schema": True,
        },
    )
    return PrefectObjects(
        http=http,
        url=url,
        flow_id=flow["id"],
        flow_name=flow["name"],
        pool_id=pool["id"],
        pool_name=pool["name"],
        queue_id=queue["id"],
        queue_name=queue["name"],
        deployment_id=deployment["id"],
        deployment_name=deployment["name"],
    )
