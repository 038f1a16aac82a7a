"""Day partitions of the event store on PostgreSQL.

`events` and `event_resources` are range-partitioned by `occurred`, one partition per UTC
day (`events_p20261206`), with a default partition (`events_default`) for events outside
the days made: older than the oldest, or further ahead than the days made in advance.
Filters on a time range read only the days in the range, and retention drops whole days.

PostgreSQL requires the partition key in every unique index, so `events` can only be
unique per (id, occurred). An id must be stored once whatever its `occurred`: a webhook
delivered again carries the same id but a new `occurred`. `event_ids` (unpartitioned,
id and occurred) is the table that holds ids unique: the store inserts there first with
`ON CONFLICT DO NOTHING RETURNING id` and writes only the events that came back.

SQLite keeps its single table and deletes rows; nothing here runs there.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

TABLES = ("events", "event_resources")
AHEAD = 3  # days made in advance of today, so an ordinary event never meets the default
BEHIND = 7  # days before today made when missing (a new store, or a worker back after days)
LOCK = 0x7472_6970_7061_7274  # advisory lock held while partitions are made or dropped
LOCK_TIMEOUT = "10s"  # dropping a day briefly locks the table: give way to long readers
ID_BATCH = 50_000  # ids forgotten per statement, so no transaction holds a day's rows
PREFIX = "_p"


def day_name(table: str, day: date) -> str:
    """The partition of `table` that holds `day`."""
    return f"{table}{PREFIX}{day:%Y%m%d}"


def default_name(table: str) -> str:
    """The partition of `table` for events outside the days made."""
    return f"{table}_default"


def day_of(moment: datetime) -> date:
    """The UTC day of an instant."""
    return moment.astimezone(UTC).date()


def bounds(day: date) -> tuple[datetime, datetime]:
    """The instants a day's partition holds: from its midnight (UTC) up to the next one."""
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


def days_between(first: date, last: date) -> list[date]:
    """Every day from `first` to `last`, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def wanted(now: datetime, keep: timedelta) -> list[date]:
    """The days that should have partitions: the last BEHIND of those retention keeps,
    and AHEAD more. Older days are not made afterwards (a retention of years would make
    thousands at once): their late events go to the default partition. Days made stay
    until retention drops them, so a store made today has every day of its retention
    in a partition once it is older than that."""
    back = min(keep, timedelta(days=BEHIND))
    return days_between(day_of(now - back), day_of(now) + timedelta(days=AHEAD))


def parse_day(table: str, name: str) -> date | None:
    """The day of a partition's name (None for the default and anything else)."""
    stem = f"{table}{PREFIX}"
    if not name.startswith(stem):
        return None
    try:
        return datetime.strptime(name[len(stem) :], "%Y%m%d").date()
    except ValueError:
        return None


def attach_statements(table: str, day: date) -> list[str]:
    """SQL that makes `day`'s partition of `table`.

    The partition is made as a table of its own, takes the rows of that day the default
    partition holds (an event that came before its day was made), then is attached:
    PostgreSQL refuses a new partition while the default holds rows of its range, and
    attaching locks the parent less than `CREATE TABLE ... PARTITION OF` (inserts go on).
    The parent's indexes are built on the partition as it is attached.
    """
    name, default = day_name(table, day), default_name(table)
    start, end = (f"'{moment.isoformat()}'" for moment in bounds(day))
    return [
        f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS)',
        f'WITH moved AS (DELETE FROM "{default}" WHERE occurred >= {start} AND occurred < '
        f'{end} RETURNING *) INSERT INTO "{name}" SELECT * FROM moved',
        f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" FOR VALUES FROM ({start}) TO ({end})',
    ]


PARTITIONS = """
SELECT child.relname FROM pg_inherits
JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
JOIN pg_class child ON child.oid = pg_inherits.inhrelid
JOIN pg_namespace ns ON ns.oid = parent.relnamespace
WHERE parent.relname = :table AND ns.nspname = current_schema()
"""


async def partitioned(conn: AsyncConnection) -> bool:
    """Whether this database's `events` table is partitioned (PostgreSQL after 0009)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = await conn.scalar(
        text(
            "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'events' AND n.nspname = current_schema()"
        )
    )
    return bool(kind == "p")


async def days(conn: AsyncConnection, table: str = "events") -> list[date]:
    """The days `table` has partitions for, oldest first."""
    names = (await conn.execute(text(PARTITIONS), {"table": table})).scalars()
    return sorted(d for d in (parse_day(table, n) for n in names) if d is not None)


async def _locked(conn: AsyncConnection) -> None:
    await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})


async def ensure(engine: AsyncEngine, needed: Iterable[date]) -> list[date]:
    """Make the partitions of `needed` days that are missing, one day per transaction;
    returns the days made. Any number of processes may call it at once."""
    made: list[date] = []
    async with engine.connect() as conn:
        have = set(await days(conn))
    for day in sorted(set(needed) - have):
        async with engine.begin() as conn:
            await _locked(conn)
            if day in await days(conn):
                continue  # another process made it meanwhile
            for table in TABLES:
                for statement in attach_statements(table, day):
                    await conn.execute(text(statement))
        made.append(day)
    if made:
        # Autovacuum analyzes each partition but never the partitioned tables: without
        # their statistics the planner guesses how many rows a related-resource subquery
        # joins, and has picked a nested loop over a whole day for it. A day is made about
        # once a day, so this runs about once a day (it samples every partition).
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE events, event_resources"))
    return made


async def drop_before(engine: AsyncEngine, older_than: datetime) -> tuple[int, datetime]:
    """Drop the day partitions that end at or before `older_than`, each with its events'
    related rows; delete the default partition's rows before it; forget their ids and
    per-minute counts. Returns the events removed and the instant below which nothing is
    stored any more: `older_than`, or the start of the day that holds it, whose partition
    stays until its whole day is past retention."""
    removed = 0
    cut = older_than
    async with engine.connect() as conn:
        stored = await days(conn)
    for day in stored:
        start, end = bounds(day)
        if end > older_than:
            if start < older_than:
                cut = start
            break
        async with engine.begin() as conn:
            await _locked(conn)
            if day not in await days(conn):
                continue  # another process dropped it
            name = day_name("events", day)
            removed += int(await conn.scalar(text(f'SELECT count(*) FROM "{name}"')) or 0)
            for table in TABLES:
                await conn.execute(text(f'DROP TABLE "{day_name(table, day)}"'))
    async with engine.begin() as conn:
        await conn.execute(
            text(f'DELETE FROM "{default_name("event_resources")}" WHERE occurred < :cut'),
            {"cut": older_than},
        )
        result = await conn.execute(
            text(f'DELETE FROM "{default_name("events")}" WHERE occurred < :cut'),
            {"cut": older_than},
        )
        removed += result.rowcount or 0
    # Ids go last: an id forgotten while its event is still stored would let a copy in.
    while True:
        async with engine.begin() as conn:
            result = await conn.execute(
                text(
                    "DELETE FROM event_ids WHERE ctid IN (SELECT ctid FROM event_ids "
                    "WHERE occurred < :cut LIMIT :batch)"
                ),
                {"cut": cut, "batch": ID_BATCH},
            )
        if (result.rowcount or 0) < ID_BATCH:
            break
    return removed, cut
