"""Times in every table are stored in UTC and read back aware in UTC, on SQLite and
PostgreSQL, whether SQLAlchemy or the hot path's hand-written SQL wrote the row: both
write the same text on SQLite, and compare and sort alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, select
from sqlalchemy.ext.asyncio import AsyncEngine

import actions.tables  # noqa: F401  (the tables register on the shared metadata)
import events.webhooks.tables  # noqa: F401
import sla.tables  # noqa: F401
from events import bulk
from events.tables import metadata
from events.timestamps import UTCDateTime, as_utc
from triggers.state import BUCKET_COLUMNS
from triggers.tables import trigger_buckets
from tripwire.database import create_engine, migrate

BERLIN = timezone(timedelta(hours=1))
AT = datetime(2026, 11, 21, 10, 30, tzinfo=BERLIN)  # 09:30 UTC


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


def window(key: str, start: datetime) -> dict[str, object]:
    return {
        "trigger_id": "t1",
        "key": key,
        "automation_id": "a1",
        "start": start,
        "end": start + timedelta(minutes=10),
        "count": 1,
        "last_event": None,
        "triggered": None,
        "proactive": False,
        "updated": start,
    }


def test_naive_times_are_taken_as_utc_and_others_converted() -> None:
    assert as_utc(datetime(2026, 11, 21, 9, 30)) == datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    assert as_utc(AT).tzinfo is UTC
    assert as_utc(AT) == AT


def test_every_time_column_of_every_table_is_utc() -> None:
    columns = [column for table in metadata.tables.values() for column in table.columns]
    plain = [str(c) for c in columns if isinstance(c.type, DateTime)]  # naive on SQLite
    assert plain == []
    assert sum(isinstance(c.type, UTCDateTime) for c in columns) > 20


async def test_rows_written_either_way_read_back_aware_utc_and_compare_alike(
    db: AsyncEngine,
) -> None:
    async with db.begin() as conn:
        await conn.execute(
            trigger_buckets.insert(),
            [window('["sqlalchemy"]', AT), window('["naive"]', as_utc(AT).replace(tzinfo=None))],
        )
        driver_row = tuple(window('["driver"]', AT).values())
        await bulk.insert(conn, trigger_buckets, BUCKET_COLUMNS, [driver_row])
    async with db.connect() as conn:
        rows = (await conn.execute(select(trigger_buckets).order_by(trigger_buckets.c.key))).all()
        found = await conn.scalars(
            select(trigger_buckets.c.key).where(trigger_buckets.c.start == AT)
        )
        later = await conn.scalars(
            select(trigger_buckets.c.key).where(trigger_buckets.c.start > AT - timedelta(hours=1))
        )
        raw = await bulk.execute(conn, 'SELECT "key", "start" FROM trigger_buckets', ())
    assert [r.key for r in rows] == ['["driver"]', '["naive"]', '["sqlalchemy"]']
    for row in rows:
        assert (row.start, row.start.tzinfo) == (AT, UTC)
        assert (row.updated, row.updated.tzinfo) == (AT, UTC)
        assert row.triggered is None
    assert sorted(found) == sorted(r.key for r in rows)
    assert sorted(later) == sorted(r.key for r in rows)
    for _, start in raw:  # through the driver, as the hot path reads them
        assert bulk.read_time(start) == AT
    if db.dialect.name == "sqlite":  # one text, whoever wrote it
        assert {start for _, start in raw} == {"2026-11-21 09:30:00.000000"}
