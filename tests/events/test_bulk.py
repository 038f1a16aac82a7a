"""Rows written through the driver read back exactly as rows SQLAlchemy wrote, on SQLite
and PostgreSQL: times compare and sort the same, JSON stays JSON, RETURNING and upserts
work across chunks, and windows saved either way (counted only, or moved) read back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from events import bulk
from triggers.state import BUCKET_COLUMNS, BUCKET_KEY, Bucket, load_buckets, save_buckets
from triggers.tables import trigger_buckets
from tripwire.database import create_engine, migrate

BERLIN = timezone(timedelta(hours=1))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


def bucket(key: str, start: datetime, count: int = 1) -> tuple[object, ...]:
    end = start + timedelta(minutes=10)
    return ("t1", key, "a1", start, end, count, None, None, False, start)


def window(key: str, start: datetime, end: datetime, *, count: int, last_event: str) -> Bucket:
    return Bucket(
        trigger_id="t1",
        key=key,
        automation_id="a1",
        start=start,
        end=end,
        count=count,
        last_event=last_event,
        triggered=None,
        proactive=False,
    )


def test_sqlite_text_is_sqlalchemys_format_in_utc() -> None:
    assert bulk.sqlite_time(datetime(2026, 3, 1, 10, 0, tzinfo=BERLIN)) == (
        "2026-03-01 09:00:00.000000"
    )
    assert bulk.sqlite_time(datetime(2026, 3, 1, 9, 0, 0, 5)) == "2026-03-01 09:00:00.000005"


def test_remembered_instants_keep_their_canonical_forms() -> None:
    berlin = datetime(2026, 3, 2, 10, 0, 0, 7, tzinfo=BERLIN)
    text = "2026-03-02 09:00:00.000007"
    assert bulk.sqlite_time(berlin) == text  # now remembered
    parsed = bulk.read_time(text)  # the same instant: read back in UTC, not in Berlin time
    assert parsed == berlin
    assert parsed.tzinfo is UTC
    assert bulk.sqlite_time(parsed) == text
    assert bulk.read_time("2026-03-02 09:00:00") == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert bulk.sqlite_time(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) == "2026-03-02 09:00:00.000000"
    # Naive times are taken as UTC; they compare unequal to aware ones, and keep apart.
    assert bulk.sqlite_time(datetime(2026, 3, 2, 10, 0, 0, 7)) == "2026-03-02 10:00:00.000007"


def test_markers_number_on_postgresql_only() -> None:
    marks = bulk.Marks("postgresql")
    assert (marks.many(2), marks.many(1)) == ("$1, $2", "$3")
    assert bulk.Marks("sqlite").many(3) == "?, ?, ?"


async def test_rows_read_back_through_sqlalchemy(db: AsyncEngine) -> None:
    start = datetime(2026, 11, 21, 9, 30, tzinfo=BERLIN)
    async with db.begin() as conn:
        await bulk.insert(conn, trigger_buckets, BUCKET_COLUMNS, [bucket('["x"]', start)])
    async with db.connect() as conn:
        row = (await conn.execute(select(trigger_buckets))).one()
        later = await conn.scalar(
            # A Berlin time: the column type binds it in UTC, as the driver's row holds it.
            select(trigger_buckets.c.key).where(trigger_buckets.c.start >= start)
        )
    assert (row.start, row.start.tzinfo) == (start, UTC)
    assert bulk.read_time(row.start) == start
    assert bulk.read_time(row.end) == start + timedelta(minutes=10)
    assert later == '["x"]'  # SQLAlchemy's own comparison finds the driver's text


async def test_returning_and_upserts_span_chunks(
    db: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "MAX_PARAMETERS", 25)  # 2 rows of 10 columns per statement
    start = datetime(2026, 11, 21, tzinfo=UTC)
    rows = [bucket(f'["{n}"]', start) for n in range(5)]
    upsert = bulk.updating(BUCKET_KEY, BUCKET_COLUMNS)
    async with db.begin() as conn:
        returned = await bulk.insert(
            conn, trigger_buckets, BUCKET_COLUMNS, rows, upsert + " RETURNING key"
        )
        await bulk.insert(
            conn, trigger_buckets, BUCKET_COLUMNS, [bucket('["3"]', start, count=7)], upsert
        )
    async with db.connect() as conn:
        counts = dict(
            (await conn.execute(select(trigger_buckets.c.key, trigger_buckets.c.count))).all()
        )
    assert sorted(r[0] for r in returned) == [f'["{n}"]' for n in range(5)]
    assert counts == {f'["{n}"]': 7 if n == 3 else 1 for n in range(5)}


async def test_a_bucket_that_only_counted_updates_its_count_and_one_that_moved_all(
    db: AsyncEngine,
) -> None:
    start = datetime(2026, 11, 21, tzinfo=UTC)
    end = start + timedelta(minutes=10)
    first = window('["a"]', start, end, count=1, last_event="e1")
    second = window('["b"]', start, end, count=1, last_event="e1")
    async with db.begin() as conn:
        await save_buckets(conn, [first, second], [])
    async with db.begin() as conn:
        loaded = await load_buckets(conn, [first.ident, second.ident])
        shapes = {ident: bucket.shape for ident, bucket in loaded.items()}
        counted, moved = loaded[first.ident], loaded[second.ident]
        counted.count, counted.last_event = 2, "e2"
        moved.end += timedelta(minutes=5)
        gone = window('["c"]', start, start, count=3, last_event="e3")
        shapes[gone.ident] = gone.shape  # loaded, then swept by someone: the insert stands
        await save_buckets(conn, [counted, moved, gone], [], shapes)
    async with db.connect() as conn:
        after = await load_buckets(conn, [first.ident, second.ident, gone.ident])
    assert (after[first.ident].count, after[first.ident].last_event) == (2, "e2")
    assert after[second.ident].end == start + timedelta(minutes=15)
    assert after[gone.ident].count == 3


def test_padded_sizes_keep_three_bits_and_the_limit() -> None:
    assert [bulk.padded(n, 1000) for n in (1, 8, 9, 11, 150, 155, 160, 161)] == [
        1, 8, 10, 12, 160, 160, 160, 192,
    ]  # fmt: skip
    assert bulk.padded(990, 1000) == 1000  # 1024 would pass the statement's limit
    assert all(n <= bulk.padded(n, 10_000) <= n * 1.25 for n in range(1, 5000))
    assert len({bulk.padded(n, 10_000) for n in range(1, 10_001)}) < 60


async def test_padded_statements_leave_what_unpadded_ones_leave(db: AsyncEngine) -> None:
    start = datetime(2026, 11, 21, tzinfo=UTC)
    keys = [f'["{n}"]' for n in range(11)]  # 11 rows pad to 12
    rows = [bucket(key, start, count=n) for n, key in enumerate(keys)]
    upsert = bulk.updating(BUCKET_KEY, BUCKET_COLUMNS)
    async with db.begin() as conn:
        fresh = await bulk.insert(
            conn,
            trigger_buckets,
            BUCKET_COLUMNS,
            rows,
            "ON CONFLICT DO NOTHING RETURNING key",
            repeatable=True,
        )
        recounted = [bucket(key, start, count=n + 100) for n, key in enumerate(keys)]
        await bulk.insert(conn, trigger_buckets, BUCKET_COLUMNS, recounted, upsert, repeatable=True)
        loaded = await load_buckets(conn, [("t1", key) for key in keys])
        found = await bulk.execute_in(
            conn, 'SELECT "key" FROM trigger_buckets WHERE "key" IN ({})', keys
        )
    assert sorted(r[0] for r in fresh) == sorted(keys)  # the repeat returns no row
    assert {b.key: b.count for b in loaded.values()} == {k: n + 100 for n, k in enumerate(keys)}
    assert sorted(r[0] for r in found) == sorted(keys)
