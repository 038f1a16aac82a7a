"""Two worker processes on one stream and one PostgreSQL database fire exactly what one
evaluator fires on the same events: no lost and no double firings."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from events.embedded import free_port
from events.filters import EventFilter
from events.model import Event
from tests.support import StartEngine
from tests.triggers.conftest import at, flow_run
from triggers.automation import Automation
from triggers.replay import replay
from triggers.repository import AutomationStore
from triggers.tables import outbox
from tripwire.database import create_engine, migrate
from tripwire.engine import Role
from tripwire.settings import Settings

KEYS = 60
RUNS_FAILING = Automation.model_validate(
    {
        "name": "run-keeps-failing",
        "trigger": {
            "type": "event",
            "expect": ["prefect.flow-run.Failed"],
            "for_each": ["prefect.resource.id"],
            "threshold": 3,
            "within": "10m",
        },
        "actions": [{"type": "do-nothing"}],
    }
)


def phase(minutes: tuple[float, ...], seed: int) -> list[Event]:
    """Failures of every key at these minutes, shuffled: within one phase, any order of
    processing gives the same firings."""
    events = [
        flow_run("Failed", run=f"r{key}", when=at(minute))
        for key in range(KEYS)
        for minute in minutes
    ]
    random.Random(seed).shuffle(events)
    return events


@pytest.fixture
def workers(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> Iterator[Callable[[Settings], list[subprocess.Popen[bytes]]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(settings: Settings) -> list[subprocess.Popen[bytes]]:
        for index in range(2):
            env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPWIRE_")}
            env |= {
                "TRIPWIRE_DATABASE_URL": str(settings.database_url),
                "TRIPWIRE_NATS_URL": str(settings.nats_url),
                "TRIPWIRE_NAMESPACE": settings.namespace,
                "TRIPWIRE_HOME": str(tmp_path / f"worker{index}"),
                "TRIPWIRE_STORE_BATCH_SIZE": "25",
                "TRIPWIRE_DECISIONS_PER_BATCH": "1000",  # many small batches: more interleaving
                # The events happen on a fixed day: retention must not sweep them as old.
                "TRIPWIRE_EVENT_RETENTION": "36500d",
            }
            started.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tripwire.cli",
                        "serve",
                        "worker",
                        "--port",
                        str(free_port()),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        return started

    yield start
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_workers_fire_exactly_what_one_would(
    database_url: str,
    settings_factory: Callable[..., Settings],
    start_engine: StartEngine,
    workers: Callable[[Settings], list[subprocess.Popen[bytes]]],
) -> None:
    settings = settings_factory(database_url=database_url)
    user_events = EventFilter.model_validate({"event": {"prefix": ["prefect."]}})
    db = create_engine(database_url)
    await migrate(db)
    await AutomationStore(db).apply([RUNS_FAILING])
    processes = workers(settings)
    api = await start_engine(
        roles=frozenset({Role.api}), database_url=database_url, namespace=settings.namespace
    )
    # Three failures per key within a minute, shuffled: the first window reaches back 15
    # minutes, so any order counts them all. Half an hour later three more, one minute
    # mark at a time: later windows start at their first event, and an event older than
    # the open window is ignored (Prefect's rule), so these must not overtake each other.
    phases = [phase((0.0, 0.3, 0.6), 1), *(phase((m,), 2) for m in (30.0, 30.3, 30.6))]
    events = [e for p in phases for e in p]
    async with api.client() as client:
        stored = 0
        for batch in phases:
            stored += len(batch)
            for start in range(0, len(batch), 20):
                chunk = [e.model_dump(mode="json") for e in batch[start : start + 20]]
                response = await client.post("/api/events", json=chunk)
                assert response.status_code == 202, response.text
            async with asyncio.timeout(60):
                while await api.engine.store.count(user_events) < stored:
                    assert all(p.poll() is None for p in processes), "a worker exited"
                    await asyncio.sleep(0.05)

    expected = await replay([RUNS_FAILING], [e.receive() for e in events])
    assert len(expected.firings) == 2 * KEYS

    triggered = EventFilter.model_validate({"event": {"name": ["tripwire.automation.triggered"]}})
    async with asyncio.timeout(60):
        while await api.engine.store.count(triggered) < len(expected.firings):
            assert all(p.poll() is None for p in processes), "a worker exited"
            await asyncio.sleep(0.1)
        while await api.engine.store.count() < len(events) + len(expected.firings):
            await asyncio.sleep(0.1)
        async with db.connect() as conn:
            while await conn.scalar(select(func.count()).select_from(outbox)):
                await asyncio.sleep(0.1)
    names = api.engine.bus.names
    assert await api.engine.bus.pending(names.events_stream, names.store_consumer) == 0

    page = await api.engine.store.read(triggered, limit=1000)
    per_key = Counter(e.payload["triggering_labels"]["prefect.resource.id"] for e in page.events)
    assert per_key == Counter({f"prefect.flow-run.r{k}": 2 for k in range(KEYS)})
    fired_on = sorted(e.payload["triggering_event"]["id"] for e in page.events)
    assert len(set(fired_on)) == len(fired_on)

    stream = await api.engine.bus.js.stream_info(names.actions_stream)
    assert stream.state.messages == 2 * KEYS  # one do-nothing request per firing
    await db.dispose()
    assert timedelta(0) < expected.firings[-1].at - expected.firings[0].at
