"""A worker killed with SIGKILL in the middle of run-deployment, after Prefect created the
flow run but before the worker heard back: the restarted worker runs the action again
with the same idempotency key, and Prefect still has exactly one flow run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.embedded import free_port
from events.filters import EventFilter
from tests.actions.prefect_server import PrefectObjects
from tests.actions.receivers import Receiver, read_body
from tests.support import Running, StartEngine, eventually
from tripwire.engine import Role

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

Message = MutableMapping[str, Any]


class HoldingProxy(Receiver):
    """Forwards to Prefect; the first create_flow_run is forwarded, then its answer is held
    back for good, so the worker is killed while waiting for it."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.creates = 0
        self.created = asyncio.Event()

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path = scope["path"].removeprefix("/api")
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.request(
                scope["method"],
                self.target + path,
                content=body,
                params=scope["query_string"].decode(),
                headers={"content-type": "application/json"},
            )
        if path.endswith("/create_flow_run"):
            self.creates += 1
            if self.creates == 1:
                self.created.set()
                await self._released.wait()  # not answered while the test runs
        await send(
            {
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer.content})


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[[Running, str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(api: Running, prefect_url: str) -> subprocess.Popen[bytes]:
        settings = api.engine.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPWIRE_")}
        env |= {
            "TRIPWIRE_DATABASE_URL": settings.resolved_database_url,
            "TRIPWIRE_NATS_URL": str(settings.nats_url),
            "TRIPWIRE_NAMESPACE": settings.namespace,
            "TRIPWIRE_HOME": str(tmp_path / f"worker{len(started)}"),
            "TRIPWIRE_PREFECT_API_URL": prefect_url,
            "TRIPWIRE_ACTION_TIMEOUT": "2s",  # the claim lapses 7 s after it was taken
        }
        command = [sys.executable, "-m", "tripwire.cli", "serve", "worker"]
        with (tmp_path / f"worker{len(started)}.log").open("wb") as log:
            process = subprocess.Popen(
                [*command, "--port", str(free_port())],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


async def ledger_entry(api: Running, status: str, timeout: float) -> dict[str, Any]:
    ledger = api.engine.acting.ledger
    found = await eventually(
        lambda: ledger.list(status=status),  # type: ignore[arg-type]
        timeout,
        f"an action request {status}",
    )
    return found[0]


async def test_a_killed_worker_does_not_make_a_second_flow_run(
    start_engine: StartEngine,
    worker_process: Callable[[Running, str], subprocess.Popen[bytes]],
    prefect_objects: PrefectObjects,
) -> None:
    api = await start_engine(roles=frozenset({Role.api}))
    automation = {
        "name": "rerun-etl",
        "trigger": {"type": "event", "expect": ["etl.load.failed"], "threshold": 1, "within": 0},
        "actions": [
            {
                "type": "run-deployment",
                "deployment_id": prefect_objects.deployment_id,
                "parameters": {"rows": "{{ event.payload.rows }}"},
            }
        ],
    }
    event = {
        "event": "etl.load.failed",
        "resource": {"prefect.resource.id": "etl.orders"},
        "payload": {"rows": 42},
    }
    async with api.client() as client:
        assert (await client.post("/api/automations/", json=automation)).status_code == 201
        assert (await client.post("/api/events", json=event)).status_code == 202

    async with HoldingProxy(prefect_objects.url) as proxy:
        worker = worker_process(api, proxy.url("/api"))
        async with asyncio.timeout(60):
            await proxy.created.wait()
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        (running,) = await api.engine.acting.ledger.list(status="running")  # type: ignore[arg-type]
        assert running["attempts"] == 1

        worker_process(api, proxy.url("/api"))  # restarted; the request comes back to it
        done = await ledger_entry(api, "succeeded", timeout=60)

    assert done["attempts"] == 2
    assert proxy.creates == 2  # the action really ran twice ...
    runs = await prefect_objects.runs_of_deployment()
    assert len(runs) == 1  # ... and Prefect made one flow run: the idempotency key
    assert runs[0]["parameters"] == {"rows": 42}
    assert runs[0]["idempotency_key"] == done["id"]
    executed = EventFilter.model_validate({"event": {"name": ["tripwire.action.executed"]}})
    await eventually(lambda: api.engine.store.count(executed), 20, "tripwire.action.executed")
