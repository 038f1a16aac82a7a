"""Day partitions of the event store on PostgreSQL; SQLite keeps one table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from events import partitions
from events.filters import EventFilter
from events.model import Event, ReceivedEvent
from events.store import Countable, EventStore
from tripwire.database import create_engine, migrate

# Mid-afternoon of today (UTC): the retention test cuts 8.5 days back and needs the day
# before the cut's day to hold its events whole, whatever time of day the suite runs.
NOW = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0)
KEEP = timedelta(days=7)
FLOW = {"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow"}


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    db = create_engine(database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def store(engine: AsyncEngine) -> EventStore:
    await migrate(engine)
    store = EventStore(engine)
    await store.prepare(NOW, KEEP)
    return store


def event(at: datetime, name: str = "prefect.flow-run.Completed", **fields: Any) -> ReceivedEvent:
    return Event(
        event=name,
        resource={"prefect.resource.id": fields.pop("resource", "prefect.flow-run.r1")},
        related=[FLOW],
        occurred=at,
        **fields,
    ).receive(at)


def encode(events: list[ReceivedEvent]) -> list[bytes]:
    return [e.model_dump_json().encode() for e in events]


async def where_stored(engine: AsyncEngine, table: str = "events") -> dict[str, str]:
    """Each row's partition, by event id."""
    key = "id" if table == "events" else "event_id"
    where = "tableoid::regclass::text" if engine.dialect.name == "postgresql" else "'events'"
    sql = f"SELECT {key}, {where} FROM {table}"
    async with engine.connect() as conn:
        return {row[0]: row[1] for row in await conn.execute(text(sql))}


def postgres_only(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps one table")


async def test_partitions_are_made_for_retention_and_the_days_ahead(
    store: EventStore, engine: AsyncEngine
) -> None:
    if engine.dialect.name == "sqlite":
        assert await store.prepare(NOW, KEEP) == []
        async with engine.connect() as conn:
            assert not await partitions.partitioned(conn)
        return
    wanted = partitions.days_between(
        (NOW - KEEP).date(), NOW.date() + timedelta(days=partitions.AHEAD)
    )
    async with engine.connect() as conn:
        for table in partitions.TABLES:
            assert set(wanted) <= set(await partitions.days(conn, table))
    assert await store.prepare(NOW, KEEP) == []  # made already: nothing to do
    # A retention of years makes no more than the last week at once.
    assert await store.prepare(NOW, timedelta(days=36500)) == []
    later = NOW + timedelta(days=2)
    made = await store.prepare(later, KEEP)
    assert made == [NOW.date() + timedelta(days=partitions.AHEAD + n) for n in (1, 2)]


async def test_events_land_in_the_partition_of_their_day(
    store: EventStore, engine: AsyncEngine
) -> None:
    postgres_only(engine)
    two_days_ago, today = event(NOW - timedelta(days=2)), event(NOW)
    await store.write(encode([two_days_ago, today]))
    for table in partitions.TABLES:
        stored = await where_stored(engine, table)
        assert stored[str(two_days_ago.id)] == partitions.day_name(
            table, two_days_ago.occurred.date()
        )
        assert stored[str(today.id)] == partitions.day_name(table, NOW.date())


async def test_a_copy_is_dropped_once_whatever_its_time(
    store: EventStore, engine: AsyncEngine
) -> None:
    original = event(NOW - timedelta(days=3))
    await store.write(encode([original, original]))
    # A webhook delivered again days later: the same id, a new `occurred`, another day.
    again = original.model_copy(update={"occurred": NOW, "received": NOW})
    async with engine.begin() as conn:
        assert await store.insert(conn, encode([again, original])) == []
    assert await store.count() == 1
    assert await store.get(str(original.id)) == original
    assert len(await where_stored(engine)) == 1
    assert len(await where_stored(engine, "event_resources")) == 1


async def test_two_writers_store_a_copy_once(store: EventStore, engine: AsyncEngine) -> None:
    postgres_only(engine)
    first = event(NOW - timedelta(days=1))
    later = first.model_copy(update={"occurred": NOW})
    async with engine.begin() as one:
        assert len(await store.insert(one, encode([first]))) == 1
        other = EventStore(engine)
        async with engine.begin() as two:
            # Waits on the first transaction's claim of the id; then finds it taken.
            import asyncio

            pending = asyncio.create_task(other.insert(two, encode([later])))
            await asyncio.sleep(0.3)
            assert not pending.done()
            await one.commit()
            assert await pending == []
    assert await store.count() == 1


async def test_retention_drops_whole_days_and_keeps_the_newer(
    store: EventStore, engine: AsyncEngine
) -> None:
    postgres_only(engine)
    # Days made while they were recent, as a worker running for two weeks has made them.
    await partitions.ensure(
        engine, partitions.days_between((NOW - timedelta(days=14)).date(), NOW.date())
    )
    old = [event(NOW - timedelta(days=d), resource=f"r{d}") for d in (12, 10, 9)]
    kept = [event(NOW - timedelta(days=d), resource=f"r{d}") for d in (1, 0)]
    await store.write(encode(old + kept))
    cut = NOW - timedelta(days=8, hours=12)
    removed = await store.sweep(cut)
    assert removed == 3
    async with engine.connect() as conn:
        left = await partitions.days(conn)
        ids = {row[0] for row in await conn.execute(text("SELECT id FROM event_ids"))}
    assert min(left) == cut.date()  # the day that holds the cut stays until all of it is past
    assert all(d not in left for d in ((NOW - timedelta(days=d)).date() for d in (12, 10, 9)))
    assert ids == {str(e.id) for e in kept}
    assert {e.id for e in (await store.read(EventFilter(), limit=10)).events} == {
        e.id for e in kept
    }
    related = await store.read(EventFilter.model_validate({"related": {"role": ["flow"]}}))
    assert related.total == 2
    assert sum(b.count for b in await store.count_by(Countable.day, EventFilter())) == 2


async def test_events_outside_the_days_made_are_stored_and_move_when_their_day_is_made(
    store: EventStore, engine: AsyncEngine
) -> None:
    ancient = event(datetime(2001, 1, 1, tzinfo=UTC), resource="ancient")
    ahead = event(NOW + timedelta(days=20), resource="ahead")
    await store.write(encode([ancient, ahead]))
    assert await store.get(str(ancient.id)) == ancient
    assert await store.get(str(ahead.id)) == ahead
    if engine.dialect.name != "postgresql":
        return
    stored = await where_stored(engine)
    assert stored[str(ancient.id)] == stored[str(ahead.id)] == "events_default"
    # Twenty days on, the engine makes that day: the event moves out of the default.
    await store.prepare(NOW + timedelta(days=20), KEEP)
    stored = await where_stored(engine)
    assert stored[str(ahead.id)] == partitions.day_name("events", ahead.occurred.date())
    related = await where_stored(engine, "event_resources")
    assert related[str(ahead.id)] == partitions.day_name("event_resources", ahead.occurred.date())
    assert await store.get(str(ahead.id)) == ahead
    # The default is swept by rows: the ancient event goes, a copy of it stays out no more.
    assert await store.sweep(NOW - KEEP) == 1
    assert await store.get(str(ancient.id)) is None


async def test_a_time_range_reads_only_its_days(store: EventStore, engine: AsyncEngine) -> None:
    postgres_only(engine)
    since = datetime.combine(NOW.date() - timedelta(days=2), datetime.min.time(), UTC)
    flt = EventFilter.model_validate(
        {
            "occurred": {
                "since": since.isoformat(),
                "until": (since + timedelta(hours=5)).isoformat(),
            },
            "related": {"id": ["prefect.flow.f1"]},
        }
    )
    from sqlalchemy import select

    from events.conditions import matching
    from events.tables import events

    query = select(events.c.id).where(*matching(flt))
    sql = str(query.compile(engine.sync_engine, compile_kwargs={"literal_binds": True}))
    async with engine.connect() as conn:
        plan = "\n".join(row[0] for row in await conn.exec_driver_sql(f"EXPLAIN {sql}"))
    day = since.date()
    for table in partitions.TABLES:
        assert partitions.day_name(table, day) in plan, plan
        assert partitions.day_name(table, day + timedelta(days=1)) not in plan, plan
        assert partitions.day_name(table, day - timedelta(days=1)) not in plan, plan


async def test_a_store_with_rows_is_migrated_to_partitions(engine: AsyncEngine) -> None:
    postgres_only(engine)
    await migrate(engine, "0008_metric_triggers")
    before = EventStore(engine)
    stored = [
        event(NOW - timedelta(days=d, minutes=m), resource=f"r{d}")
        for d in (0, 2, 30, 400)
        for m in (1, 2)
    ]
    await before.write(encode(stored))
    await migrate(engine)
    after = EventStore(engine)
    async with engine.connect() as conn:
        assert await partitions.partitioned(conn)
        made = await partitions.days(conn)
        ids = {row[0] for row in await conn.execute(text("SELECT id FROM event_ids"))}
    assert {(NOW - timedelta(days=d, minutes=1)).date() for d in (0, 2, 30)} <= set(made)
    assert ids == {str(e.id) for e in stored}
    where = await where_stored(engine)
    old = [e for e in stored if e.occurred < NOW - timedelta(days=366)]
    assert {where[str(e.id)] for e in old} == {"events_default"}
    for original in stored:
        assert await after.get(str(original.id)) == original
    assert await after.count() == len(stored)
    related = await after.read(EventFilter.model_validate({"related": {"id": ["prefect.flow.f1"]}}))
    assert related.total == len(stored)
    async with engine.begin() as conn:
        assert await after.insert(conn, encode(stored)) == []  # still stored once


async def test_counts_from_the_per_minute_counts_equal_counting_the_events(
    store: EventStore, engine: AsyncEngine
) -> None:
    from collections import Counter

    base = datetime(2026, 12, 1, 23, 58, 10, tzinfo=UTC)
    names = ["prefect.flow-run.Failed", "prefect.flow-run.Completed", "airflow.dag-run.failed"]
    stored = [
        event(base + timedelta(seconds=37 * n), names[n % 3], resource=f"r{n}") for n in range(40)
    ]
    await store.write(encode(stored))
    cuts = [base - timedelta(minutes=5), base + timedelta(seconds=50), base + timedelta(minutes=7)]
    ranges: list[dict[str, Any]] = [
        {},
        {"since": cuts[1].isoformat()},
        {"until": cuts[2].isoformat()},
        {"since": cuts[1].isoformat(), "until": cuts[2].isoformat()},
        {"since": cuts[0].isoformat(), "until": cuts[1].isoformat()},
        {"since": stored[3].occurred.isoformat(), "until": stored[3].occurred.isoformat()},
        {"since": "2026-12-02T00:00:00Z", "until": "2026-12-02T00:10:00Z"},
    ]
    for occurred in ranges:
        for name in [None, {"prefix": ["prefect."]}, {"name": [names[2]]}]:
            spec: dict[str, Any] = {"occurred": occurred}
            if name:
                spec["event"] = name
            flt = EventFilter.model_validate(spec)
            expected = [e for e in stored if flt.includes(e)]
            assert await store.count(flt) == len(expected), spec
            assert (await store.read(flt)).total == len(expected), spec
            by_event = Counter(e.event for e in expected)
            counted = await store.count_by(Countable.event, flt)
            assert [(b.value, b.count) for b in counted] == sorted(by_event.items()), spec
            by_hour = Counter(e.occurred.strftime("%Y-%m-%dT%H:00:00") for e in expected)
            counted = await store.count_by(Countable.hour, flt)
            assert [(b.value, b.count) for b in counted] == sorted(by_hour.items()), spec
            by_day = Counter(e.occurred.strftime("%Y-%m-%dT00:00:00") for e in expected)
            counted = await store.count_by(Countable.day, flt)
            assert [(b.value, b.count) for b in counted] == sorted(by_day.items()), spec


async def test_related_filters_without_a_time_range_page_as_with_one(
    store: EventStore, engine: AsyncEngine
) -> None:
    # On PostgreSQL a related filter with no time range reads its page from the related
    # rows in page order (EventStore.read); with a range, from the events. Both must give
    # the same events in the same order, page after page.
    if engine.dialect.name == "postgresql":
        await partitions.ensure(
            engine, partitions.days_between((NOW - timedelta(days=5)).date(), NOW.date())
        )
    other = {"prefect.resource.id": "prefect.flow.f2", "prefect.resource.role": "flow"}
    tag = {"prefect.resource.id": "prefect.tag.t", "prefect.resource.role": "tag"}
    tag2 = {"prefect.resource.id": "prefect.tag.u", "prefect.resource.role": "tag"}
    moments = [NOW - timedelta(days=d, hours=h) for d in (0, 1, 3, 5) for h in (0, 2)]
    moments += [datetime(2001, 1, 1, tzinfo=UTC), NOW + timedelta(days=20)]  # the default
    stored: list[ReceivedEvent] = []
    for n, at in enumerate(moments):
        for k in range(3):  # three events at each instant: ties broken by id
            related = [[FLOW], [other], [FLOW, tag, tag2], []][(n + k) % 4]
            resource = "prefect.flow.f1" if (n + k) % 5 == 0 else f"prefect.flow-run.r{n}-{k}"
            stored.append(
                Event(
                    event=["prefect.flow-run.Completed", "prefect.flow-run.Failed"][k % 2],
                    resource={"prefect.resource.id": resource},
                    related=related,
                    occurred=at,
                ).receive(at)
            )
    await store.write(encode(stored))
    everything = {"since": "2000-01-01T00:00:00+00:00", "until": "2100-01-01T00:00:00+00:00"}
    specs: list[dict[str, Any]] = [
        {"related": {"id": ["prefect.flow.f1"]}},
        {"related": {"role": ["tag"]}},  # two related rows of one event match
        {"related": {"id": ["prefect.flow.f1"]}, "event": {"name": ["prefect.flow-run.Failed"]}},
        {"any_resource": {"id": ["prefect.flow.f1"]}},
        {"any_resource": {"id": ["prefect.flow.f1"]}, "event": {"prefix": ["prefect.flow-run.F"]}},
        {"related": {"role": ["flow"]}, "any_resource": {"id_prefix": ["prefect.tag."]}},
    ]

    async def pages(flt: EventFilter) -> list[ReceivedEvent]:
        found: list[ReceivedEvent] = []
        after = None
        while True:
            page = await store.read(flt, limit=4, after=after, count=False)
            found.extend(page.events)
            if page.next_token is None:
                return found
            after = (page.events[-1].occurred.isoformat(), str(page.events[-1].id))

    for spec in specs:
        for order in ("DESC", "ASC"):
            open_flt = EventFilter.model_validate({**spec, "order": order})
            ranged = EventFilter.model_validate({**spec, "order": order, "occurred": everything})
            expected = sorted(
                (e for e in stored if open_flt.includes(e)),
                key=lambda e: (e.occurred, str(e.id)),
                reverse=order == "DESC",
            )
            assert len(expected) > 4, spec  # more than a page
            assert await pages(open_flt) == expected, (spec, order)
            assert await pages(ranged) == expected, (spec, order)
            first = await store.read(open_flt, limit=4)
            assert first.total == len(expected) == (await store.read(ranged, limit=4)).total
            # Half-open ranges take the same path.
            since = EventFilter.model_validate(
                {**spec, "order": order, "occurred": {"since": everything["since"]}}
            )
            assert await pages(since) == expected, (spec, order)
