"""The event store on SQLite and PostgreSQL: the same suite on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from events import clock
from events.conditions import matching
from events.filters import EventFilter
from events.model import Event, ReceivedEvent
from events.store import Countable, EventStore
from events.tables import event_counts, events
from tests.support import fixture_events
from tripwire.database import create_engine, migrate


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EventStore]:
    engine = create_engine(database_url)
    await migrate(engine)
    await migrate(engine)  # idempotent on every start
    yield EventStore(engine)
    await engine.dispose()


def received(data: dict[str, Any]) -> ReceivedEvent:
    return ReceivedEvent.model_validate(data)


def encode(events: list[ReceivedEvent]) -> list[bytes]:
    return [e.model_dump_json().encode() for e in events]


def make(name: str, resource: str, at: datetime, **fields: Any) -> ReceivedEvent:
    return Event(
        event=name,
        resource={"prefect.resource.id": resource, **fields.pop("labels", {})},
        occurred=at,
        **fields,
    ).receive(at)


async def test_prefect_events_round_trip_unchanged(store: EventStore) -> None:
    captured = [received(e) for e in fixture_events()]
    await store.write(encode(captured))
    for original in captured:
        assert await store.get(str(original.id)) == original
    assert await store.count() == len(captured)


async def test_a_batch_written_twice_is_stored_once(store: EventStore) -> None:
    captured = encode([received(e) for e in fixture_events()])
    await store.write(captured)
    await store.write(captured[:5] + captured)
    assert await store.count() == len(captured)


FLOW = "prefect.flow.fde78461-c5bd-47fe-be86-850fb1e69223"  # in the fixture events
FILTERS: list[dict[str, Any]] = [
    {},
    {"event": {"prefix": ["prefect.flow-run."]}},
    {"event": {"name": ["prefect.flow-run.Failed", "prefect.flow-run.Completed"]}},
    {"event": {"prefix": ["prefect."], "exclude_prefix": ["prefect.task-run."]}},
    {"event": {"exclude_name": ["prefect.flow-run.Running"]}},
    {"resource": {"id_prefix": ["prefect.flow-run."]}},
    {"resource": {"labels": {"prefect.state-type": ["FAILED", "CRASHED"]}}},
    {"resource": {"labels": {"prefect.state-name": "!Running"}}},
    {"resource": {"labels": {"prefect.resource.name": "rain*"}}},
    {"related": {"role": ["flow"], "labels": {"prefect.resource.name": "etl-*"}}},
    {"related": {"role": ["deployment"]}},
    {"related": {"labels": {"prefect.resource.name": ["etl-orders", "!etl-sales"]}}},
    {"any_resource": {"id_prefix": ["prefect.deployment."]}},
    {"related": {"id": [FLOW], "role": ["flow"]}},
    {"any_resource": {"id": [FLOW]}},
    {"related": {"id": ["prefect.flow.none-such"]}},
    {"resource": {"labels": {"no.such.label": "x"}}},
    {"event": {"prefix": ["PREFECT.FLOW-RUN."]}},  # case-sensitive everywhere
    {"resource": {"labels": {"prefect.resource.name": "RAIN*"}}},
    # as Prefect's clients send it: every field, unset ones empty
    {"id": {"id": []}, "resource": {"id_prefix": ["prefect."], "distinct": False}, "related": None},
]


@pytest.mark.parametrize("spec", FILTERS, ids=lambda s: orjson.dumps(s).decode()[:60])
async def test_sql_filter_agrees_with_the_in_memory_filter(
    store: EventStore, spec: dict[str, Any]
) -> None:
    captured = [received(e) for e in fixture_events()]
    await store.write(encode(captured))
    flt = EventFilter.model_validate(spec)
    page = await store.read(flt, limit=1000)
    expected = {str(e.id) for e in captured if flt.includes(e)}
    assert {str(e.id) for e in page.events} == expected
    assert page.total == len(expected)


async def test_pages_follow_each_other_without_gaps_or_repeats(store: EventStore) -> None:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    # equal timestamps on purpose: the id breaks ties
    events = [make("page.event", f"r.{i}", base + timedelta(seconds=i // 3)) for i in range(25)]
    await store.write(encode(events))
    for order in ("ASC", "DESC"):
        flt = EventFilter.model_validate({"order": order})
        seen: list[str] = []
        page = await store.read(flt, limit=7)
        seen += [str(e.id) for e in page.events]
        while page.next_token:
            from events.paging import decode_token

            again, limit, after = decode_token(page.next_token)
            page = await store.read(again, limit, after)
            seen += [str(e.id) for e in page.events]
        assert len(seen) == len(set(seen)) == 25
        times = [next(e.occurred for e in events if str(e.id) == i) for i in seen]
        assert times == sorted(times, reverse=order == "DESC")


async def test_time_window_filters(store: EventStore) -> None:
    base = datetime(2026, 11, 1, 12, tzinfo=UTC)
    await store.write(encode([make("t", "r", base + timedelta(hours=h)) for h in range(5)]))
    flt = EventFilter.model_validate(
        {
            "occurred": {
                "since": (base + timedelta(hours=1)).isoformat(),
                "until": (base + timedelta(hours=3)).isoformat(),
            }
        }
    )
    assert (await store.read(flt)).total == 3


async def test_count_by_day_hour_event_and_resource(store: EventStore) -> None:
    base = datetime(2026, 11, 1, 22, 30, tzinfo=UTC)
    events = [
        make("a.x", "r.1", base),
        make("a.x", "r.2", base + timedelta(minutes=10)),
        make("b.y", "r.1", base + timedelta(hours=2)),
    ]
    await store.write(encode(events))
    by_day = await store.count_by(Countable.day, EventFilter())
    assert [(b.value, b.count) for b in by_day] == [
        ("2026-11-01T00:00:00", 2),
        ("2026-11-02T00:00:00", 1),
    ]
    assert by_day[0].start_time == datetime(2026, 11, 1, tzinfo=UTC)
    assert by_day[0].end_time == datetime(2026, 11, 2, tzinfo=UTC)
    by_hour = await store.count_by(Countable.hour, EventFilter())
    assert [(b.value, b.count) for b in by_hour] == [
        ("2026-11-01T22:00:00", 2),
        ("2026-11-02T00:00:00", 1),
    ]
    by_event = await store.count_by(Countable.event, EventFilter())
    assert [(b.value, b.count) for b in by_event] == [("a.x", 2), ("b.y", 1)]
    by_resource = await store.count_by(
        Countable.resource, EventFilter.model_validate({"event": {"name": ["a.x"]}})
    )
    assert [(b.value, b.count) for b in by_resource] == [("r.1", 1), ("r.2", 1)]


async def test_retention_sweep_removes_old_events_and_their_related_rows(store: EventStore) -> None:
    with clock.frozen_clock(datetime(2026, 11, 21, tzinfo=UTC)) as frozen:
        related = [{"prefect.resource.id": "flow.1", "prefect.resource.role": "flow"}]
        old = [make("old", "r", frozen() - timedelta(days=8), related=related) for _ in range(3)]
        new = [make("new", "r", frozen() - timedelta(days=1), related=related)]
        await store.write(encode(old + new))
        removed = await store.sweep(clock.now() - timedelta(days=7), batch=2)
    assert removed == 3
    remaining = await store.read(EventFilter(), limit=10)
    assert [e.event for e in remaining.events] == ["new"]
    # related rows went with their events: filtering by role finds only the kept one
    by_role = await store.read(EventFilter.model_validate({"related": {"role": ["flow"]}}))
    assert by_role.total == 1
    from sqlalchemy import func, select

    from events.tables import event_resources

    async with store.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(event_resources)) == 1


@pytest.mark.parametrize(
    "spec",
    [
        {"related": {"id": [FLOW]}},
        {"related": {"role": ["flow"]}},
        {"any_resource": {"id": [FLOW]}},
    ],
    ids=["related-id", "related-role", "any-resource"],
)
async def test_related_filters_read_the_related_rows_once_not_once_per_event(
    store: EventStore, spec: dict[str, Any]
) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    query = select(events.c.id).where(*matching(EventFilter.model_validate(spec)))
    sql = str(query.compile(store.engine.sync_engine, compile_kwargs={"literal_binds": True}))
    async with store.engine.connect() as conn:
        plan = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
    steps = [str(step) for *_, step in plan]  # (id, parent, unused, detail)
    assert not any("CORRELATED" in step for step in steps), steps


async def test_counts_over_time_follow_what_is_stored_once(store: EventStore) -> None:
    t0 = datetime(2026, 12, 6, 9, 0, 30, tzinfo=UTC)
    batch = [
        make("prefect.flow-run.Failed", "r1", t0),
        make("prefect.flow-run.Failed", "r2", t0 + timedelta(seconds=10)),
        make("prefect.flow-run.Completed", "r3", t0 + timedelta(minutes=1)),
        make("airflow.dag-run.failed", "d1", t0 + timedelta(minutes=1)),
        make("airflow.dag-run.failed", "d2", t0 + timedelta(minutes=10)),
    ]
    await store.write(encode(batch))
    await store.write(encode(batch[:2]))  # stored already: not counted again
    # Another process stores into the same minute: its rows add up with these.
    other = EventStore(store.engine)
    await other.write(encode([make("prefect.flow-run.Failed", "r4", t0 + timedelta(seconds=20))]))
    hour = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)
    counted = await store.counts_over_time(hour, hour + timedelta(hours=1), minute)
    assert {(c.bucket, c.event, c.count) for c in counted} == {
        (0, "prefect.flow-run.Failed", 3),
        (1, "prefect.flow-run.Completed", 1),
        (1, "airflow.dag-run.failed", 1),
        (10, "airflow.dag-run.failed", 1),
    }
    by_five = await store.counts_over_time(hour, hour + timedelta(hours=1), 5 * minute)
    assert {(c.bucket, c.event, c.count) for c in by_five} == {
        (0, "prefect.flow-run.Failed", 3),
        (0, "prefect.flow-run.Completed", 1),
        (0, "airflow.dag-run.failed", 1),
        (2, "airflow.dag-run.failed", 1),
    }
    flow_runs = await store.counts_over_time(hour, hour + timedelta(hours=1), minute, ["prefect."])
    assert sum(c.count for c in flow_runs) == 4
    assert await store.counts_over_time(hour, hour + minute, minute, ["prefect.flow_run"]) == []

    await store.sweep(t0 + timedelta(minutes=1))
    left = await store.counts_over_time(hour, hour + timedelta(hours=1), minute)
    # The counts follow the events the sweep left: on SQLite those after the cut; on
    # PostgreSQL also the rest of the cut's day when it has a partition (today's has).
    stored = (await store.read(EventFilter(), limit=100)).events
    assert {(c.bucket, c.event, c.count) for c in left} == {
        (int((e.occurred - hour).total_seconds()) // 60, e.event, n)
        for e in stored
        for n in [
            sum(1 for o in stored if (o.occurred.minute, o.event) == (e.occurred.minute, e.event))
        ]
    }
    if store.engine.dialect.name == "sqlite":
        assert {c.bucket for c in left} == {1, 10}


async def test_an_event_older_than_retention_is_counted_from_the_events_not_the_counts(
    store: EventStore,
) -> None:
    # A sweep deletes the events below its cut, then their per-minute counts: an old event
    # stored in between would keep a count without its event. So the counts hold only
    # events within retention of when they were stored, and older ones are counted where
    # they are.
    kept = EventStore(store.engine, counted_for=timedelta(days=7))
    with clock.frozen_clock(datetime(2026, 11, 21, 12, tzinfo=UTC)) as frozen:
        old = [make("old", "r", frozen() - timedelta(days=8, seconds=i)) for i in range(3)]
        recent = [make("recent", "r", frozen() - timedelta(hours=1, seconds=i)) for i in range(2)]
        await kept.write(encode(old + recent))
        async with store.engine.connect() as conn:
            counted = await conn.scalar(select(func.sum(event_counts.c.count)))
        assert counted == 2
        assert await kept.count() == 5
        week = EventFilter.model_validate({"occurred": {"since": frozen() - timedelta(days=9)}})
        assert await kept.count(week) == 5
        by_name = {b.value: b.count for b in await kept.count_by(Countable.event, EventFilter())}
        assert by_name == {"old": 3, "recent": 2}
        # The sweep leaves counts and events agreeing.
        assert await kept.sweep(frozen() - timedelta(days=7)) == 3
        assert await kept.count() == 2
