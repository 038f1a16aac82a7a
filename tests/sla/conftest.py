"""An SLA evaluator on a real database, fed events directly (no bus), with time driven
through the clock seam: the SLA rules' test bench."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter

from events import clock
from events.clock import FrozenClock
from events.model import Event
from events.store import EventStore
from sla.evaluator import SLAEvaluator
from sla.lookback import store_lookback
from sla.model import SLA
from sla.store import SLAStore
from sla.windows import Window
from sla.windows import load as load_windows
from tests.support import published_on
from triggers.evaluator import Subjects
from triggers.results import Result
from tripwire.database import create_engine, migrate

EVENTS_SUBJECT = "t.events.in"
ACTIONS_SUBJECT = "t.actions.requested"
# Monday 23 November 2026, 08:00 in Berlin (UTC+1).
MONDAY_8 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)

_SLA: TypeAdapter[SLA] = TypeAdapter(SLA)


def refreshed(when: datetime, model: str = "sales") -> Event:
    return Event(
        occurred=when,
        event="dbt.model.refreshed",
        resource={"prefect.resource.id": f"dbt.model.{model}"},
    )


def flow_run(state: str, run: str, when: datetime, deployment: str = "etl") -> Event:
    return Event(
        occurred=when,
        event=f"prefect.flow-run.{state}",
        resource={"prefect.resource.id": f"prefect.flow-run.{run}"},
        related=[
            {
                "prefect.resource.id": f"prefect.deployment.{deployment}",
                "prefect.resource.role": "deployment",
                "prefect.resource.name": deployment,
            }
        ],
    )


class SLABench:
    def __init__(self, url: str, clock: FrozenClock) -> None:
        self.db = create_engine(url)
        self.store = EventStore(self.db)
        self.slas = SLAStore(self.db)
        self.clock = clock
        self.evaluator = SLAEvaluator(
            Subjects(EVENTS_SUBJECT, ACTIONS_SUBJECT), self.slas, store_lookback(self.store)
        )

    async def apply(self, *definitions: dict[str, Any]) -> None:
        await self.slas.apply([_SLA.validate_python(d) for d in definitions])
        await self.evaluator.reload()

    async def store_only(self, *events: Event) -> None:
        """Events stored before an SLA existed."""
        await self.store.write([orjson.dumps(e.receive().model_dump(mode="json")) for e in events])

    async def send(self, *events: Event) -> Result:
        bodies = [orjson.dumps(e.receive().model_dump(mode="json")) for e in events]
        async with self.db.begin() as conn:
            documents = await self.store.insert(conn, bodies)
            return await self.evaluator.evaluate(conn, documents)

    async def due(self, at: datetime | None = None) -> Result:
        if at is not None:
            self.clock.current = at
        async with self.db.begin() as conn:
            return await self.evaluator.evaluate_due(conn, self.clock.current)

    async def window(self, name: str, key: list[str] | None = None) -> Window | None:
        stored = await self.slas.get(name)
        ident = (stored.id, orjson.dumps(key or []).decode())
        async with self.db.connect() as conn:
            return (await load_windows(conn, [ident])).get(ident)


def reported(result: Result) -> list[tuple[str, dict[str, Any]]]:
    """(event name, payload) of the tripwire.sla.* events a pass produced."""
    out = []
    for message in result.messages:
        if published_on(message.subject, EVENTS_SUBJECT):
            body = orjson.loads(message.body)
            out.append((body["event"], body["payload"]))
    return out


def states(result: Result) -> list[str]:
    return [name.removeprefix("tripwire.sla.") for name, _ in reported(result)]


def requests(result: Result) -> list[dict[str, Any]]:
    return [orjson.loads(m.body) for m in result.messages if m.subject == ACTIONS_SUBJECT]


@pytest.fixture
def frozen() -> Iterator[FrozenClock]:
    with clock.frozen_clock(MONDAY_8) as moving:
        yield moving


@pytest.fixture
async def bench(database_url: str, frozen: FrozenClock) -> AsyncIterator[SLABench]:
    b = SLABench(database_url, frozen)
    await migrate(b.db)
    yield b
    await b.db.dispose()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
