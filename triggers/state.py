"""Trigger state in the database: windows (buckets), child firings, decisions, outbox.

Everything here runs on the connection of the batch's transaction. On PostgreSQL, a
transaction takes an advisory lock per (trigger, key) it will touch, in sorted order, so
workers sharing a stream never interleave on the same window and never deadlock on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from events import bulk, clock
from triggers.tables import child_firings, decisions, outbox, trigger_buckets

BUCKET_COLUMNS = (
    "trigger_id",
    "key",
    "automation_id",
    "start",
    "end",
    "count",
    "last_event",
    "triggered",
    "proactive",
    "updated",
)
BUCKET_KEY = ("trigger_id", "key")
OUTBOX_COLUMNS = ("id", "subject", "body", "created")
COUNTED_COLUMNS = ("count", "last_event", "updated")
BucketId = tuple[str, str]  # (trigger id, for_each key as JSON)
Shape = tuple[str, datetime, datetime, datetime | None, bool]


@dataclass(kw_only=True)  # nine fields, several of one type: built by name, never by place
class Bucket:
    """One open window of one event trigger for one for_each key."""

    trigger_id: str
    key: str
    automation_id: str
    start: datetime
    end: datetime
    count: int
    last_event: str | None  # an event id: the event itself is in the store
    triggered: datetime | None
    proactive: bool

    @property
    def ident(self) -> BucketId:
        return (self.trigger_id, self.key)

    @property
    def shape(self) -> Shape:
        """Everything but the count and the last event: what places the window."""
        return (self.automation_id, self.start, self.end, self.triggered, self.proactive)


def _is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def lock_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


async def lock(conn: AsyncConnection, names: Iterable[str]) -> None:
    """Serialize transactions that touch the same state (PostgreSQL; SQLite has one writer)."""
    if not _is_postgres(conn):
        return
    keys = sorted({lock_key(n) for n in names})
    if keys:
        await conn.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"
            ),
            {"keys": keys},
        )


def bucket_lock(ident: BucketId) -> str:
    return f"bucket:{ident[0]}:{ident[1]}"


def _row_to_bucket(row: Sequence[Any]) -> Bucket:
    """A bucket from a row of all trigger_buckets columns, in the table's order."""
    trigger_id, key, automation_id, start, end, count, last_event, triggered, proactive = row[:9]
    return Bucket(
        trigger_id=trigger_id,
        key=key,
        automation_id=automation_id,
        start=bulk.read_time(start),
        end=bulk.read_time(end),
        count=count,
        last_event=last_event,
        triggered=bulk.read_time(triggered) if triggered is not None else None,
        proactive=bool(proactive),
    )


async def load_buckets(conn: AsyncConnection, idents: Sequence[BucketId]) -> dict[BucketId, Bucket]:
    """The stored buckets among `idents`."""
    found: dict[BucketId, Bucket] = {}
    # The wanted keys as a VALUES list joined to the table: one primary-key lookup per key
    # in SQLite and PostgreSQL alike, and half the time of `trigger_id = ? AND key IN
    # (...)` terms ORed per trigger in SQLite (a row-value IN list makes it scan the
    # table). Written by hand: building this with SQLAlchemy cost more than running it.
    selected = ", ".join(f'b."{column.name}"' for column in trigger_buckets.columns)
    for chunk in bulk.padded_chunks(idents, bulk.per_statement(2)):  # repeats join twice
        marks = bulk.Marks(conn.dialect.name)
        wanted = ", ".join(f"({marks.many(2)})" for _ in chunk)
        query = (
            f"WITH wanted (t, k) AS (VALUES {wanted}) SELECT {selected} FROM wanted"
            ' JOIN trigger_buckets b ON b."trigger_id" = wanted.t AND b."key" = wanted.k'
        )
        parameters = tuple(v for ident in chunk for v in ident)
        for row in await bulk.execute(conn, query, parameters):
            bucket = _row_to_bucket(row)
            found[bucket.ident] = bucket
    return found


def upsert(conn: AsyncConnection, table: Any, keys: list[str]) -> Any:
    """An INSERT that updates every other column when a row with the same `keys` exists."""
    insert = (postgresql if _is_postgres(conn) else sqlite).insert(table)
    columns = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
    return insert.on_conflict_do_update(index_elements=keys, set_=columns)


async def save_buckets(
    conn: AsyncConnection,
    changed: Iterable[Bucket],
    removed: Iterable[BucketId],
    stored: Mapping[BucketId, Shape] | None = None,
) -> None:
    """Write changed buckets and delete removed ones. `stored` has the shape each loaded
    bucket had in the database: one that only counted (same shape) updates just its count,
    last event and time. That leaves the table's indexes alone, and costs about a third
    of rewriting the whole row."""
    now = clock.now()
    stored = stored or {}
    moved: list[tuple[Any, ...]] = []
    counted: list[tuple[Any, ...]] = []
    for b in changed:
        row = (
            b.trigger_id,
            b.key,
            b.automation_id,
            b.start,
            b.end,
            b.count,
            b.last_event,
            b.triggered,
            b.proactive,
            now,
        )
        (counted if stored.get(b.ident) == b.shape else moved).append(row)
    gone = list(removed)
    if gone:
        await conn.execute(
            delete(trigger_buckets).where(
                and_(
                    trigger_buckets.c.trigger_id == bindparam("tid"),
                    trigger_buckets.c.key == bindparam("k"),
                )
            ),
            [{"tid": t, "k": k} for t, k in gone],
        )
    # The whole row goes in either way: should the row be gone, the insert stands.
    for rows, taken in ((moved, BUCKET_COLUMNS), (counted, COUNTED_COLUMNS)):
        if rows:
            upsert = bulk.updating(BUCKET_KEY, taken)
            await bulk.insert(conn, trigger_buckets, BUCKET_COLUMNS, rows, upsert, repeatable=True)


def _proactive(trigger_ids: Sequence[str]) -> ColumnElement[bool]:
    # Only the triggers given (enabled ones): a paused automation's window stays due,
    # and must neither hold up the others nor make the timer spin on a past instant.
    return and_(
        trigger_buckets.c.proactive.is_(True), trigger_buckets.c.trigger_id.in_(trigger_ids)
    )


async def due_buckets(
    conn: AsyncConnection, trigger_ids: Sequence[str], now: datetime, limit: int
) -> list[Bucket]:
    """Proactive buckets of these triggers whose window has ended."""
    query = (
        select(trigger_buckets)
        .where(_proactive(trigger_ids), trigger_buckets.c.end <= now)
        .order_by(trigger_buckets.c.end)
        .limit(limit)
    )
    return [_row_to_bucket(row) for row in (await conn.execute(query)).all()]


async def next_due(conn: AsyncConnection, trigger_ids: Sequence[str]) -> datetime | None:
    """When the earliest proactive window of these triggers ends."""
    value: datetime | None = await conn.scalar(
        select(func.min(trigger_buckets.c.end)).where(_proactive(trigger_ids))
    )
    return value


async def ensure_buckets(conn: AsyncConnection, buckets: Sequence[Bucket]) -> None:
    """Create buckets that do not exist yet; existing ones are left alone."""
    if not buckets:
        return
    insert = (postgresql if _is_postgres(conn) else sqlite).insert(trigger_buckets)
    await conn.execute(
        insert.on_conflict_do_nothing(index_elements=["trigger_id", "key"]),
        [dict(vars(b), updated=clock.now()) for b in buckets],
    )


STALE_AFTER = timedelta(hours=1)


async def sweep_buckets(conn: AsyncConnection, ended_before: datetime) -> int:
    """Delete reactive windows that ended and were not touched for an hour.

    Untouched, not just ended: a worker processing a backlog or a backfill works in the
    past, and its windows, ended by the wall clock, are still collecting.
    """
    result = await conn.execute(
        delete(trigger_buckets).where(
            trigger_buckets.c.proactive.is_(False),
            trigger_buckets.c.end <= ended_before,
            trigger_buckets.c.updated <= clock.now() - STALE_AFTER,
        )
    )
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class ChildFiring:
    """The latest firing of one child of a compound or sequence trigger."""

    child_id: str
    firing_id: str
    triggered: datetime
    event: str | None


async def record_child_firing(
    conn: AsyncConnection,
    parent_id: str,
    automation_id: str,
    firing: ChildFiring,
    keep_since: datetime | None,
) -> list[ChildFiring]:
    """Store a child's firing, drop ones older than `keep_since`; return what remains."""
    if keep_since is not None:
        await conn.execute(
            delete(child_firings).where(
                child_firings.c.parent_id == parent_id, child_firings.c.triggered < keep_since
            )
        )
    await conn.execute(
        upsert(conn, child_firings, ["parent_id", "child_id"]),
        [
            {
                "parent_id": parent_id,
                "child_id": firing.child_id,
                "automation_id": automation_id,
                "firing_id": firing.firing_id,
                "triggered": firing.triggered,
                "event": firing.event,
            }
        ],
    )
    rows = await conn.execute(select(child_firings).where(child_firings.c.parent_id == parent_id))
    return [
        ChildFiring(
            child_id=r.child_id, firing_id=r.firing_id, triggered=r.triggered, event=r.event
        )
        for r in rows.all()
    ]


async def clear_child_firings(conn: AsyncConnection, parent_id: str, firing_ids: list[str]) -> None:
    await conn.execute(
        delete(child_firings).where(
            child_firings.c.parent_id == parent_id, child_firings.c.firing_id.in_(firing_ids)
        )
    )


async def write_decisions(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        columns = tuple(rows[0])
        await bulk.insert(conn, decisions, columns, [tuple(r.values()) for r in rows])


async def write_outbox(conn: AsyncConnection, messages: Sequence[Any]) -> None:
    """Messages to publish after commit (ids already stored are kept as they are)."""
    if not messages:
        return
    now = clock.now()
    rows = [(str(m.id), m.subject, m.body.decode(), now) for m in messages]
    await bulk.insert(conn, outbox, OUTBOX_COLUMNS, rows, "ON CONFLICT DO NOTHING", repeatable=True)


async def clear_outbox(conn: AsyncConnection, ids: Sequence[str]) -> None:
    """Drop published messages from the outbox (hand-written: every batch that fired
    passes here, and building the IN list with SQLAlchemy cost more than deleting)."""
    await bulk.execute_in(conn, 'DELETE FROM outbox WHERE "id" IN ({})', ids)
