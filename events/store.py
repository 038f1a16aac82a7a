"""The event store: batches written in one transaction, queried with EventFilter (as SQL
in `events.conditions`, a page at a time as in `events.paging`)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    and_,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events import bulk, clock, paging, partitions
from events.conditions import (
    any_resource_condition,
    any_resource_parts,
    matching,
    name_conditions,
    own_conditions,
    related_conditions,
)
from events.filters import EventFilter, EventOccurredFilter, EventOrder
from events.model import RESOURCE_ID, RESOURCE_ROLE, ReceivedEvent
from events.tables import event_counts, event_ids, event_resources, events
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
MOST_LANES = 64
ADD_COUNTS = (
    "ON CONFLICT (minute, event, shard) DO UPDATE SET count = event_counts.count + excluded.count"
)


def _minute(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


def _start(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


TICK = timedelta(microseconds=1)  # the finest time the stores keep


def _by_minutes(
    flt: EventFilter, floor: int | None = None
) -> tuple[int | None, int | None, list[EventFilter]] | None:
    """How to count a filter on time and names only from the per-minute counts: the
    whole minutes of its range (first, end; minute numbers, None when open), and filters
    for the parts of its range counted from the events: the minutes it cuts at its edges,
    and everything before `floor`, the first minute the counts hold (see EventStore).
    None when the filter needs the events (resources, ids) or its range is within a
    minute or before `floor`."""
    if flt.resource or flt.any_resource or flt.related or (flt.id and flt.id.id is not None):
        return None
    since, until = flt.occurred.since, flt.occurred.until
    since = None if since is None else as_utc(since)
    until = None if until is None else as_utc(until)
    first = end = None
    edges: list[EventFilter] = []
    if since is not None:
        first = _minute(since)
        if _start(first) < since:
            first += 1
    if floor is not None and (first is None or first < floor):
        if since is None or since < _start(floor):
            below = _start(floor) - TICK
            edges.append(_within(flt, since, below if until is None else min(until, below)))
        first = floor
    elif since is not None and first is not None and since < _start(first):
        edges.append(_within(flt, since, _start(first) - TICK))
    if until is not None:
        end = _minute(until + TICK)  # minutes before it end at or before `until`
        if _start(end) <= until and (first is None or end >= first):
            edges.append(_within(flt, _start(end), until))
    if first is not None and end is not None and first >= end:
        return None
    return first, end, edges


def _within(flt: EventFilter, since: datetime | None, until: datetime) -> EventFilter:
    return flt.model_copy(update={"occurred": EventOccurredFilter(since=since, until=until)})


def _driven(flt: EventFilter) -> bool:
    """Whether a page of `flt` is read from the related rows in page order (see
    `_driven_page`): filters on related resources whose time range is open."""
    related = flt.related is not None or flt.any_resource is not None
    return related and (flt.occurred.since is None or flt.occurred.until is None)


def _after(
    position: tuple[str, str] | None, order: EventOrder, occurred: Any, event_id: Any
) -> list[Any]:
    """`paging.after` on these columns, with the bound on `occurred` alone that an index
    scan starts from (the OR of the other does not bound it)."""
    if position is None:
        return []
    at = datetime.fromisoformat(position[0])
    bound = occurred >= at if order is EventOrder.ASC else occurred <= at
    return [bound, paging.after(position, order, occurred, event_id)]


def _related_keys(*conditions: list[Any]) -> Any:
    """(occurred, id) of the events of the related rows that meet `conditions`."""
    r = event_resources.c
    return select(r.occurred.label("occurred"), r.event_id.label("id")).where(
        *(cond for part in conditions for cond in part)
    )


def _driven_page(flt: EventFilter, limit: int, after: tuple[str, str] | None) -> Any:
    """A page of a related-resource filter on day partitions, found from the related rows.

    As `id IN (SELECT event_id ...)` with no time range to prune by, PostgreSQL hash-joins
    every event with the resource's related rows and sorts them all. Here the page's keys
    (occurred, id) come first, in page order, from the related rows (and, for
    `any_resource`, the events' own resource), each checked against the rest of the
    filter on its event: the day partitions' (resource, occurred, event_id) indexes
    (revision 0010) are merged in order and read only until the page is full. The events
    are then read by key."""
    r, c = event_resources.c, events.c
    rest = own_conditions(flt)
    if flt.related is not None and flt.any_resource is not None:
        rest.append(any_resource_condition(flt))
    on_related = _after(after, flt.order, r.occurred, r.event_id)
    if rest:
        # The rest of the filter, on the event of the related row.
        event = select(literal(1)).where(c.id == r.event_id, c.occurred == r.occurred, *rest)
        on_related.append(exists(event))
    if flt.related is not None:
        parts = [_related_keys(related_conditions(flt) or [], on_related)]
    else:
        own, other = any_resource_parts(flt)
        on_own = _after(after, flt.order, c.occurred, c.id)
        parts = [
            select(c.occurred.label("occurred"), c.id.label("id")).where(*own, *rest, *on_own),
            _related_keys(other, on_related),
        ]
    keys = parts[0].subquery() if len(parts) == 1 else union_all(*parts).subquery()
    if flt.order is EventOrder.DESC:
        order = (keys.c.occurred.desc(), keys.c.id.desc())
    else:
        order = (keys.c.occurred.asc(), keys.c.id.asc())
    page = select(keys.c.occurred, keys.c.id).distinct().order_by(*order).limit(limit + 1)
    found = page.subquery()
    query = select(c.body, c.occurred, c.id).select_from(
        found.join(events, and_(c.id == found.c.id, c.occurred == found.c.occurred))
    )
    return paging.ordered(query, flt.order)


class EventStore:
    """Reads and writes events through one SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine, counted_for: timedelta | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # This process's rows of `event_counts` (see events/tables.py).
        self.shard = secrets.randbelow(2**31 - MOST_LANES)  # and up to MOST_LANES after it
        self._partitioned: bool | None = None
        # The per-minute counts hold only events that occurred within `counted_for` (the
        # retention) of when they were stored: a sweep deletes the events and then the
        # counts below its cut, so an older event stored in between would keep its count
        # without the event. Counting reads the events before that from the events.
        self.counted_for = counted_for

    def _floor(self) -> int | None:
        """The first minute the per-minute counts hold events of; None: all of them."""
        if self.counted_for is None:
            return None
        return _minute(as_utc(clock.now()) - self.counted_for)

    async def partitioned(self, conn: AsyncConnection) -> bool:
        """Whether `events` is split into day partitions (PostgreSQL; events/partitions.py)."""
        if self._partitioned is None:
            self._partitioned = await partitions.partitioned(conn)
        return self._partitioned

    async def prepare(self, now: datetime, keep: timedelta) -> list[date]:
        """Make the day partitions that retention (`keep`) holds and the next few days
        before events need them; returns the days made (none on SQLite)."""
        async with self.engine.connect() as conn:
            if not await self.partitioned(conn):
                return []
        return await partitions.ensure(self.engine, partitions.wanted(now, keep))

    async def write(self, bodies: Sequence[bytes]) -> None:
        """Store encoded ReceivedEvents in one transaction; ids already stored are skipped."""
        if bodies:
            async with self.engine.begin() as conn:
                await self.insert(conn, bodies)

    async def insert(
        self, conn: AsyncConnection, bodies: Sequence[bytes], lane: int = 0
    ) -> list[dict[str, Any]]:
        """Store encoded ReceivedEvents on the caller's transaction; returns the ones that
        were not stored before (as JSON documents), in the order given. Transactions of
        this process side by side pass different `lane`s: each counts in rows of its own."""
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
        if await self.partitioned(conn):
            # Day partitions are unique per (id, occurred) only: the id is claimed in
            # `event_ids` first, and only the events whose ids this transaction claimed
            # are written (a copy with another `occurred` stays out too).
            claimed = await bulk.insert(
                conn,
                event_ids,
                ("id", "occurred"),
                [(row[0], row[1]) for row in rows],
                "ON CONFLICT DO NOTHING RETURNING id",
                repeatable=True,
            )
            fresh = {row[0] for row in claimed}
            await bulk.insert(
                conn,
                events,
                EVENT_COLUMNS,
                [row for row in rows if row[0] in fresh],
                "ON CONFLICT DO NOTHING",
                repeatable=True,
            )
        else:
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
        floor = self._floor()
        await self._add_counts(
            conn,
            self.shard + lane,
            [
                (row[1], row[2])
                for row in rows
                if row[0] in fresh and (floor is None or _minute(row[1]) >= floor)
            ],
        )
        return [doc for event_id, doc in documents.items() if event_id in fresh]

    async def _add_counts(
        self, conn: AsyncConnection, shard: int, stored: list[tuple[datetime, str]]
    ) -> None:
        """Add the events just stored to the per-minute counts, in one upsert whose rows
        are sorted, so two transactions of this shard lock them in one order."""
        counted = Counter((_minute(occurred), name) for occurred, name in stored)
        rows = [(minute, name, shard, n) for (minute, name), n in sorted(counted.items())]
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
        query = select(events.c.body).where(events.c.id == event_id)
        async with self.engine.connect() as conn:
            if await self.partitioned(conn):
                # The event's time, from its id, picks the one day partition to read.
                at = select(event_ids.c.occurred).where(event_ids.c.id == event_id)
                query = query.where(events.c.occurred == at.scalar_subquery())
            body = await conn.scalar(query)
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
        async with self.engine.connect() as conn:
            if await self.partitioned(conn) and _driven(flt):
                query = _driven_page(flt, limit, after)
            else:
                query = select(events.c.body, events.c.occurred, events.c.id).where(*matching(flt))
                if after is not None:
                    query = query.where(paging.after(after, flt.order))
                query = paging.ordered(query, flt.order).limit(limit + 1)
            rows = (await conn.execute(query)).all()
            total = await self._count(conn, flt) if count else None
        page = [ReceivedEvent.model_validate_json(row.body) for row in rows[:limit]]
        token = None
        if len(rows) > limit:
            last = page[-1]
            token = paging.encode_token(flt, limit, (last.occurred.isoformat(), str(last.id)))
        return Page(events=page, total=total, next_token=token)

    async def count(self, flt: EventFilter | None = None) -> int:
        """How many events match."""
        async with self.engine.connect() as conn:
            return await self._count(conn, flt or EventFilter())

    async def _count(self, conn: AsyncConnection, flt: EventFilter) -> int:
        """How many events match: for a filter on time and names only, the per-minute
        counts of its whole minutes plus the events of the minutes it cuts, so counting a
        day or a month reads thousands of rows, not millions."""
        split = _by_minutes(flt, self._floor())
        if split is None:
            query = select(func.count()).select_from(events).where(*matching(flt))
            return int(await conn.scalar(query) or 0)
        first, end, edges = split
        total = int(
            await conn.scalar(self._minutes(flt, first, end, func.sum(event_counts.c.count))) or 0
        )
        for edge in edges:
            query = select(func.count()).select_from(events).where(*matching(edge))
            total += int(await conn.scalar(query) or 0)
        return total

    @staticmethod
    def _minutes(flt: EventFilter, first: int | None, end: int | None, *columns: Any) -> Any:
        """`columns` of the per-minute counts in minutes [first, end) under `flt`'s names."""
        c = event_counts.c
        query = select(*columns)
        if first is not None:
            query = query.where(c.minute >= first)
        if end is not None:
            query = query.where(c.minute < end)
        if flt.event is not None:
            query = query.where(*name_conditions(flt.event, c.event))
        return query

    def _minute_bucket(self, unit: str, minutes: Any) -> Any:
        """`_bucket` of a column of whole hours or days, counted in minutes since 1970."""
        seconds = cast(minutes, BigInteger) * 60
        if self.dialect == "postgresql":
            moment = func.timezone("UTC", func.to_timestamp(seconds))
            return func.to_char(moment, 'YYYY-MM-DD"T"HH24:00:00')
        pattern = "%Y-%m-%dT00:00:00" if unit == "day" else "%Y-%m-%dT%H:00:00"
        return func.strftime(pattern, seconds, "unixepoch")

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
        split = None if countable is Countable.resource else _by_minutes(flt, self._floor())
        if split is not None:
            # As `_count`: the whole minutes from the per-minute counts, the edges from
            # the events, added up by key in the database.
            first, end, edges = split
            n = func.sum(event_counts.c.count).label("n")
            if countable is Countable.event:
                counted = self._minutes(flt, first, end, event_counts.c.event.label("key"), n)
                counted = counted.group_by(event_counts.c.event)
            else:
                # Summed per hour or day as a number first: formatting each minute's row
                # would cost more than the sums.
                size = 60 if countable is Countable.hour else 1440
                hour_or_day = event_counts.c.minute - event_counts.c.minute % size
                begins = hour_or_day.label("begins")
                sums = self._minutes(flt, first, end, begins, n).group_by(begins).subquery()
                counted = select(
                    self._minute_bucket(countable.value, sums.c.begins).label("key"), sums.c.n
                )
            parts = [
                counted,
                *(
                    select(key, func.count().label("n")).where(*matching(edge)).group_by(key)
                    for edge in edges
                ),
            ]
            both = union_all(*parts).subquery()
            query = (
                select(both.c.key, func.sum(both.c.n).label("n"))
                .group_by(both.c.key)
                .order_by(both.c.key)
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
        """Delete events (and their related rows) that occurred before `older_than`,
        taken down to its whole minute, so that the per-minute counts and the events
        still agree. On PostgreSQL whole day partitions go: the day that holds the cut
        stays until all of it is past (events/partitions.py)."""
        older_than = _start(_minute(older_than))
        async with self.engine.connect() as conn:
            whole_days = await self.partitioned(conn)
        if whole_days:
            removed, cut = await partitions.drop_before(self.engine, older_than)
        else:
            removed, cut = await self._delete_before(older_than, batch), older_than
        async with self.engine.begin() as conn:
            await conn.execute(delete(event_counts).where(event_counts.c.minute < _minute(cut)))
        return removed

    async def _delete_before(self, older_than: datetime, batch: int) -> int:
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
        return removed

    async def ping(self) -> None:
        """Raise when the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.execute(select(literal(1)))
