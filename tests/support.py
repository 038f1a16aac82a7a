"""What tests share besides fixtures: where the repository's test data is, the running
engine handle, waiting for real state, and the project's extra virtual environments.

Fixtures live in conftest.py files; everything a test imports by name lives here.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from events.bus import Bus
from events.checkpoints import CheckpointProtocol
from tripwire.app import create_app
from tripwire.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
# Events and automations captured from a real Prefect server (see its README).
FIXTURES = ROOT / "tests" / "fixtures" / "prefect"
POSTGRES_URL = os.environ.get("TRIPWIRE_TEST_POSTGRES_URL")

T = TypeVar("T")

POLL_EVERY = 0.02  # seconds between looks at real state; never a wait for a timer


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout: float = 10.0, what: str = "the condition"
) -> T:
    """Poll `check` until it returns something truthy, and return that. Tests wait for real
    state this way (an event stored, a request arrived), bounded, never by sleeping for a
    time they hope is enough."""
    try:
        async with asyncio.timeout(timeout):
            while not (result := await check()):
                await asyncio.sleep(POLL_EVERY)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout:g}s") from None
    assert result is not None  # truthy, so never None
    return result


def require_venv(name: str, program: str) -> Path:
    """The folder of the project's venv `name` (.venv-prefect, .venv-airflow); missing =
    skipped locally, a failure in CI. Its Makefile target creates bin/`program` last,
    after pip succeeded."""
    venv = ROOT / name
    if not (venv / "bin" / program).exists():
        reason = f"no venv at {venv}: run `make {name}/bin/{program}`"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return venv


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy or libpq URL as asyncpg takes it."""
    return url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgres://", "postgresql://"
    )


def fixture_events() -> list[dict[str, Any]]:
    """Events captured from a real Prefect server."""
    lines = (FIXTURES / "flow-run-events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


class Running:
    """An engine serving HTTP on a free port, in this test's event loop."""

    def __init__(self, engine: Engine, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self.engine = engine
        self.server = server
        self.task = task
        self.url = engine.settings.api_url
        self.ws_url = self.url.replace("http://", "ws://")

    def client(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **options)

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task

    async def wait_stored(self, count: int, timeout: float = 10.0) -> int:
        """Wait until at least `count` events are stored; how many there are then."""

        async def stored() -> int:
            found = await self.engine.store.count()
            return found if found >= count else 0

        return await eventually(stored, timeout, f"{count} events stored")


StartEngine = Callable[..., Awaitable[Running]]


async def serve(engine: Engine, name: str = "engine") -> Running:
    """Serve `engine`'s app over HTTP on its settings' port in this event loop, once it
    answers; the caller stops it (`Running.stop`)."""
    settings = engine.settings
    config = uvicorn.Config(
        create_app(engine),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="on",
        ws=CheckpointProtocol,  # as `tripwire up` serves
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def serving() -> bool:
        if task.done():
            task.result()
            raise RuntimeError(f"the {name} stopped while starting")
        return bool(server.started)

    await eventually(serving, 20, f"the {name} serving")
    return Running(engine, server, task)


async def stream_ids(bus: Bus) -> list[str]:
    """The ids of every message on the events stream, in stream order."""
    info = await bus.js.stream_info(bus.names.events_stream)
    last = info.state.last_seq
    ids: list[str] = []
    if not info.state.messages:
        return ids
    subscription = await bus.js.subscribe(bus.names.events_wildcard, ordered_consumer=True)
    try:
        while True:
            message = await subscription.next_msg(timeout=10)
            ids.append(message.headers["Nats-Msg-Id"])
            if message.metadata.sequence.stream >= last:
                return ids
    finally:
        await subscription.unsubscribe()


def published_on(subject: str, base: str) -> bool:
    """Whether a message's subject is `base` or under it: events are published under
    their key (`<ns>.events.in.<key>`)."""
    return subject == base or subject.startswith(base + ".")
