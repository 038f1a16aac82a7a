"""An evaluator on a real database, fed events directly (no bus): the trigger rules'
test bench. Times are event times, so no clock needs to move for Reactive triggers;
Proactive ones are driven by `due(now)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from events.model import Event, ReceivedEvent
from events.store import EventStore
from tests.support import published_on
from triggers.automation import Automation
from triggers.evaluator import Evaluator, Subjects
from triggers.identity import stamped
from triggers.results import Result
from triggers.tables import decisions, trigger_buckets
from tripwire.database import create_engine, migrate

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
EVENTS_SUBJECT = "t.events.in"
ACTIONS_SUBJECT = "t.actions.requested"


def at(minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def flow_run(
    state: str,
    run: str = "run-1",
    flow: str = "etl-orders",
    when: datetime = T0,
    payload: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> Event:
    """A Prefect-shaped flow-run state event."""
    return Event(
        occurred=when,
        event=f"prefect.flow-run.{state}",
        resource={"prefect.resource.id": f"prefect.flow-run.{run}", **(labels or {})},
        related=[
            {
                "prefect.resource.id": f"prefect.flow.{flow}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow,
            }
        ],
        payload=payload or {"validated_state": {"type": state.upper()}},
    )


class Harness:
    def __init__(self, url: str) -> None:
        self.db = create_engine(url)
        self.store = EventStore(self.db)
        self.evaluator = Evaluator(Subjects(EVENTS_SUBJECT, ACTIONS_SUBJECT), max_depth=3)

    def load(self, *definitions: dict[str, Any] | Automation) -> list[Automation]:
        automations = [stamped(Automation.model_validate(d)) for d in definitions]
        self.evaluator.load(automations)
        return automations

    async def send(self, *events: Event) -> Result:
        received = [e if isinstance(e, ReceivedEvent) else e.receive() for e in events]
        bodies = [orjson.dumps(e.model_dump(mode="json")) for e in received]
        return await self.send_bodies(bodies)

    async def send_bodies(self, bodies: list[bytes]) -> Result:
        async with self.db.begin() as conn:
            documents = await self.store.insert(conn, bodies)
            return await self.evaluator.evaluate(conn, documents)

    async def due(self, now: datetime) -> Result:
        async with self.db.begin() as conn:
            return await self.evaluator.evaluate_due(conn, now)

    async def open_windows(self) -> int:
        async with self.db.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(trigger_buckets)) or 0)

    async def reasons(self) -> list[tuple[str, str]]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(decisions.c.outcome, decisions.c.reason).order_by(decisions.c.id)
            )
            return [(r.outcome, r.reason) for r in rows.all()]


def fired(result: Result) -> list[str]:
    return [f"{f.automation.name}:{f.state.value}" for f in result.firings]


def published(result: Result, subject: str) -> list[dict[str, Any]]:
    return [orjson.loads(m.body) for m in result.messages if published_on(m.subject, subject)]


def as_received(document: dict[str, Any]) -> ReceivedEvent:
    return ReceivedEvent.model_validate(document)


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    h = Harness(database_url)
    await migrate(h.db)
    yield h
    await h.db.dispose()
