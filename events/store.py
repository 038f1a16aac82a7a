"""The event store: batches written in one transaction, queried with EventFilter (as SQL
in `events.conditions`, a page at a time as in `events.paging`)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import delete, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events import bulk, clock, paging
from events.conditions import matching
from events.filters import EventFilter
from events.model import RESOURCE_ID, RESOURCE_ROLE, ReceivedEvent
from events.tables import event_counts, event_resources, events
from events.timestamps import as_utc

MAX_PAGE = 1000


class Countable(StrEnum):
    """What `count_by` groups on."""

    day = "day"
    hour = "hour"
    event = "event"
    resource = "resource"


@dataclass(frozen=True)
class CountBucket:
    """One group of `count_by`."""

    value: str
    count: int
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(frozen=True)
class Page:
    """One page of a query, with the token for the next one (None at the end)."""

    events: list[ReceivedEvent]
    total: int | None  # of all matching events; None when not asked for
    next_token: str | None


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


EVENT_COLUMNS = (
    "id",
    "occurred",
    "event",
    "resource_id",
    "resource",
    "received",
    "recorded",
    "follows",
    "body",
)
RELATED_COLUMNS = ("event_id", "position", "occurred", "resource_id", "resource_role", "resource")


def _row(raw: dict[str, Any], body: bytes, recorded: datetime) -> tuple[Any, ...]:
    """The `events` row of one event, in the order of EVENT_COLUMNS (written through the
    driver, so times are made UTC here rather than by the column type)."""
    resource = raw["resource"]
    return (
        raw["id"],
        as_utc(_parse_time(raw["occurred"])),
        raw["event"],
        resource[RESOURCE_ID],
        resource,
        as_utc(_parse_time(raw["received"])),
        recorded,
        raw.get("follows"),
        body.decode(),
    )


@dataclass(frozen=True)
class BucketCount:
    """How many events of one name occurred in one bucket of `counts_over_time`."""

    bucket: int  # counted in steps from the range's start
    event: str
    count: int


COUNT_COLUMNS = ("minute", "event", "shard", "count")
ADD_COUNTS = (
    "ON CONFLICT (minute, event, shard) DO UPDATE SET count = event_counts.count + excluded.count"
)


def _minute(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


class EventStore:
    """Reads and writes events through one SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # This process's rows of `event_counts` (see events/tables.py).
        self.shard = secrets.randbelow(2**31)

    async def write(self, bodies: Sequence[bytes]) -> None:
        """Store encoded ReceivedEvents in one transaction; ids already stored are skipped."""
        if bodies:
            async with self.engine.begin() as conn:
                await self.insert(conn, bodies)

    async def insert(self, conn: AsyncConnection, bodies: Sequence[bytes]) -> list[dict[str, Any]]:
        """Store encoded ReceivedEvents on the caller's transaction; returns the ones that
        were not stored before (as JSON documents), in the order given."""
        recorded = as_utc(clock.now())
        rows, related_rows, documents = [], [], {}
        for body in bodies:
            raw = orjson.loads(body)
            if raw["id"] in documents:
                continue
            documents[raw["id"]] = raw
            rows.append(_row(raw, body, recorded))
        if not rows:
            return []
        # Sorted, so that two workers inserting overlapping batches lock rows in one order.
        rows.sort(key=lambda r: r[0])
        stored = await bulk.insert(
            conn,
            events,
            EVENT_COLUMNS,
            rows,
            "ON CONFLICT DO NOTHING RETURNING id",
            repeatable=True,
        )
        fresh = {row[0] for row in stored}
        for row in rows:
            event_id, occurred = row[0], row[1]
            if event_id not in fresh:
                continue
            for position, resource in enumerate(documents[event_id].get("related") or ()):
                related_rows.append(
                    (
                        event_id,
                        position,
                        occurred,
                        resource[RESOURCE_ID],
                        resource.get(RESOURCE_ROLE, ""),
                        resource,
                    )
                )
        if related_rows:
            await bulk.insert(
                conn,
                event_resources,
                RELATED_COLUMNS,
                related_rows,
                "ON CONFLICT DO NOTHING",
                repeatable=True,
            )
        await self._count(conn, [(row[1], row[2]) for row in rows if row[0] in fresh])
        return [doc for event_id, doc in documents.items() if event_id in fresh]

    async def _count(self, conn: AsyncConnection, stored: list[tuple[datetime, str]]) -> None:
        """Add the events just stored to the per-minute counts, in one upsert whose rows
        are sorted, so two transactions of this shard lock them in one order."""
        counted = Counter((_minute(occurred), name) for occurred, name in stored)
        rows = [(minute, name, self.shard, n) for (minute, name), n in sorted(counted.items())]
        if rows:
            await bulk.insert(conn, event_counts, COUNT_COLUMNS, rows, ADD_COUNTS)

    async def counts_over_time(
        self, since: datetime, until: datetime, step: timedelta, prefixes: Sequence[str] = ()
    ) -> list[BucketCount]:
        """Events per `step` (whole minutes) from `since` and per name, of those that
        occurred in the minutes from `since`'s to `until`'s (both whole) with names
        starting with one of `prefixes` (all when none); summed in the database from the
        per-minute counts, not read from events."""
        c = event_counts.c
        first, minutes = _minute(since), max(int(step.total_seconds()) // 60, 1)
        bucket = ((c.minute - first) // minutes).label("bucket")
        query = (
            select(bucket, c.event, func.sum(c.count).label("n"))
            .where(c.minute >= first, c.minute <= _minute(until))
            .group_by(bucket, c.event)
        )
        if prefixes:
            query = query.where(or_(*(c.event.startswith(p, autoescape=True) for p in prefixes)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [BucketCount(int(row.bucket), row.event, int(row.n)) for row in rows]

    async def get(self, event_id: str) -> ReceivedEvent | None:
        """One event by id."""
        async with self.engine.connect() as conn:
            body = await conn.scalar(select(events.c.body).where(events.c.id == event_id))
        return None if body is None else ReceivedEvent.model_validate_json(body)

    async def read(
        self,
        flt: EventFilter,
        limit: int = 50,
        after: tuple[str, str] | None = None,
        *,
        count: bool = True,
    ) -> Page:
        """A page of matching events; `after` continues from a previous page's last event.
        `count=False` skips counting every match, which reads them all."""
        limit = max(1, min(limit, MAX_PAGE))
        conditions = matching(flt)
        query = select(events.c.body, events.c.occurred, events.c.id).where(*conditions)
        if after is not None:
            query = query.where(paging.after(after, flt.order))
        query = paging.ordered(query, flt.order).limit(limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            total = None
            if count:
                matches = select(func.count()).select_from(events).where(*conditions)
                total = int(await conn.scalar(matches) or 0)
        page = [ReceivedEvent.model_validate_json(row.body) for row in rows[:limit]]
        token = None
        if len(rows) > limit:
            last = page[-1]
            token = paging.encode_token(flt, limit, (last.occurred.isoformat(), str(last.id)))
        return Page(events=page, total=total, next_token=token)

    async def count(self, flt: EventFilter | None = None) -> int:
        """How many events match."""
        query = select(func.count()).select_from(events).where(*matching(flt or EventFilter()))
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    def _bucket(self, unit: str) -> Any:
        if self.dialect == "postgresql":
            return func.to_char(
                func.date_trunc(unit, func.timezone("UTC", events.c.occurred)),
                'YYYY-MM-DD"T"HH24:00:00',
            )
        pattern = "%Y-%m-%dT00:00:00" if unit == "day" else "%Y-%m-%dT%H:00:00"
        return func.strftime(pattern, events.c.occurred)

    async def count_by(self, countable: Countable, flt: EventFilter) -> list[CountBucket]:
        """Counts grouped by day, hour, event name or resource id."""
        if countable in (Countable.day, Countable.hour):
            key = self._bucket(countable.value)
        else:
            key = events.c.event if countable is Countable.event else events.c.resource_id
        key = key.label("key")
        query = (
            select(key, func.count().label("n")).where(*matching(flt)).group_by(key).order_by(key)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        step = {Countable.day: timedelta(days=1), Countable.hour: timedelta(hours=1)}.get(countable)
        buckets = []
        for row in rows:
            start = datetime.fromisoformat(row.key).replace(tzinfo=UTC) if step else None
            buckets.append(
                CountBucket(
                    str(row.key), int(row.n), start, start + step if start and step else None
                )
            )
        return buckets

    async def sweep(self, older_than: datetime, batch: int = 5000) -> int:
        """Delete events (and their related rows) that occurred before `older_than`."""
        removed = 0
        while True:
            old = select(events.c.id).where(events.c.occurred < older_than)
            ids = old.limit(batch).scalar_subquery()
            async with self.engine.begin() as conn:
                await conn.execute(
                    delete(event_resources).where(event_resources.c.event_id.in_(ids))
                )
                result = await conn.execute(delete(events).where(events.c.id.in_(ids)))
            removed += result.rowcount or 0
            if (result.rowcount or 0) < batch:
                break
        # Whole minutes only: the counts of the minute the cut falls in stay until the next.
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(event_counts).where(event_counts.c.minute < _minute(older_than))
            )
        return removed

    async def ping(self) -> None:
        """Raise when the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.execute(select(literal(1)))
