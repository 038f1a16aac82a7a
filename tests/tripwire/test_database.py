"""The SQLite file behind a URL, checkpoints taken off the writer, and upgrades."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from events.store import EventStore
from events.tables import events
from tripwire.database import (
    FALLBACK_CHECKPOINT_PAGES,
    checkpoint,
    create_engine,
    migrate,
    sqlite_path,
)


def test_the_file_of_a_sqlite_url() -> None:
    assert sqlite_path("sqlite:////data/tripwire.db") == Path("/data/tripwire.db")
    assert sqlite_path("sqlite+aiosqlite:///rel/t.db?timeout=5") == Path("rel/t.db")
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql://postgres@127.0.0.1/test") is None


async def test_a_checkpoint_copies_the_wal_while_the_writer_stays_connected(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x TEXT)"))
            for n in range(200):
                await conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": str(n) * 100})
        busy, frames, copied = checkpoint(path)
        assert (busy, copied) == (0, frames)
        assert frames > 0
        async with engine.connect() as conn:  # the data is there, through the writer's pool
            assert await conn.scalar(text("SELECT count(*) FROM t")) == 200
    finally:
        await engine.dispose()


async def test_commits_leave_checkpointing_to_the_checkpoint_thread(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x TEXT)"))
        for batch in range(30):  # ~1,500 pages in 30 commits: SQLite's default checkpoints
            async with engine.begin() as conn:  # at 1,000
                await conn.execute(
                    text("INSERT INTO t VALUES (:x)"),
                    [{"x": f"{batch}-{n}" * 400} for n in range(100)],
                )
        busy, frames, copied = checkpoint(path)
        assert frames > 1_000
        assert (busy, copied) == (0, frames)
        async with engine.connect() as conn:
            limit = await conn.scalar(text("PRAGMA wal_autocheckpoint"))
        assert limit == FALLBACK_CHECKPOINT_PAGES
    finally:
        await engine.dispose()


async def test_upgrading_counts_the_events_stored_before(database_url: str) -> None:
    engine = create_engine(database_url)
    t0 = datetime(2026, 12, 6, 9, 0, 5, tzinfo=UTC)
    try:
        await migrate(engine, "0005_webhooks")
        rows = [
            {
                "id": str(uuid.uuid4()),
                "occurred": t0 + timedelta(seconds=20 * n),
                "event": "x.happened",
                "resource_id": "r",
                "resource": {"prefect.resource.id": "r"},
                "received": t0,
                "recorded": t0,
                "body": "{}",
            }
            for n in range(4)  # 09:00:05, :25, :45 and 09:01:05
        ]
        async with engine.begin() as conn:
            await conn.execute(events.insert(), rows)
        await migrate(engine)
        hour = datetime(2026, 12, 6, 9, tzinfo=UTC)
        counted = await EventStore(engine).counts_over_time(
            hour, hour + timedelta(hours=1), timedelta(minutes=1)
        )
        assert sorted((c.bucket, c.count) for c in counted) == [(0, 3), (1, 1)]
    finally:
        await engine.dispose()
