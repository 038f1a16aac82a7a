"""Metric trigger state in the database: the flow runs each trigger measures
(`metric_runs`), where each of its keys stands (`metric_states`), and the aggregate a
tick reads. Everything runs on the connection of the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from events import bulk
from triggers.metrics import KeyState, RunProgress
from triggers.tables import metric_runs, metric_states

IN_FLIGHT_FOR = timedelta(days=7)  # a run with no sample yet is forgotten after this long

Aggregate = tuple[int, float]  # runs with a sample in range, the sum of their samples


def run_lock(trigger_id: str, run: str) -> str:
    return f"metric-run:{trigger_id}:{run}"


def trigger_lock(trigger_id: str) -> str:
    return f"metric:{trigger_id}"


RUN_COLUMNS = (
    "trigger_id",
    "run",
    "automation_id",
    "key",
    "late",
    "started",
    "running",
    "ended",
    "outcome",
    "at",
    "value",
    "touched",
)
TIMES = frozenset({"late", "started", "running", "ended", "at", "touched"})


async def load_runs(
    conn: AsyncConnection, idents: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], RunProgress]:
    """The stored progress of these (trigger, run) pairs. Hand-written, as the windows'
    read (`triggers.state.load_buckets`): flow-run events are most of a Prefect
    platform's events, and building the query with SQLAlchemy cost more than running it."""
    found: dict[tuple[str, str], RunProgress] = {}
    selected = ", ".join(f'm."{c}"' for c in RUN_COLUMNS)
    for chunk in bulk.padded_chunks(idents, bulk.per_statement(2)):
        marks = bulk.Marks(conn.dialect.name)
        wanted = ", ".join(f"({marks.many(2)})" for _ in chunk)
        query = (
            f"WITH wanted (t, r) AS (VALUES {wanted}) SELECT {selected} FROM wanted"
            ' JOIN metric_runs m ON m."trigger_id" = wanted.t AND m."run" = wanted.r'
        )
        for row in await bulk.execute(conn, query, tuple(v for i in chunk for v in i)):
            fields: dict[str, Any] = {
                c: bulk.read_time(v) if c in TIMES and v is not None else v
                for c, v in zip(RUN_COLUMNS, row, strict=True)
            }
            progress = RunProgress(**fields)
            found[progress.ident] = progress
    return found


async def save_runs(conn: AsyncConnection, runs: Iterable[RunProgress]) -> None:
    rows = [tuple(getattr(r, c) for c in RUN_COLUMNS) for r in runs]
    if rows:
        upsert = bulk.updating(("trigger_id", "run"), RUN_COLUMNS)
        await bulk.insert(conn, metric_runs, RUN_COLUMNS, rows, upsert, repeatable=True)


async def aggregates(
    conn: AsyncConnection, ranges: dict[str, timedelta], now: datetime
) -> dict[tuple[str, str], Aggregate]:
    """(trigger, key) -> the samples counted in [now - range, now), per trigger's range:
    one grouped query per distinct range, along the (trigger_id, at) index. A sample at
    the tick itself counts from the next tick, as an event at a window's end belongs to
    the next window: a replay stores events at an instant after evaluating it."""
    by_range: dict[timedelta, list[str]] = {}
    for trigger_id, span in ranges.items():
        by_range.setdefault(span, []).append(trigger_id)
    found: dict[tuple[str, str], Aggregate] = {}
    for span, ids in by_range.items():
        query = (
            select(
                metric_runs.c.trigger_id,
                metric_runs.c.key,
                func.count(),
                func.sum(metric_runs.c.value),
            )
            .where(
                metric_runs.c.trigger_id.in_(ids),
                metric_runs.c.at >= now - span,
                metric_runs.c.at < now,
            )
            .group_by(metric_runs.c.trigger_id, metric_runs.c.key)
        )
        for trigger_id, key, count, total in (await conn.execute(query)).all():
            found[(trigger_id, key)] = (int(count), float(total))
    return found


async def load_states(
    conn: AsyncConnection, trigger_ids: Sequence[str]
) -> dict[tuple[str, str], KeyState]:
    """Every key's state of these triggers."""
    if not trigger_ids:
        return {}
    query = select(metric_states).where(metric_states.c.trigger_id.in_(trigger_ids))
    return {
        (row["trigger_id"], row["key"]): KeyState(**row)
        for row in (await conn.execute(query)).mappings()
    }


STATE_COLUMNS = (
    "trigger_id",
    "key",
    "automation_id",
    "since",
    "triggered",
    "value",
    "runs",
    "evaluated",
)


async def save_states(conn: AsyncConnection, states: Iterable[KeyState]) -> None:
    rows = [tuple(getattr(s, c) for c in STATE_COLUMNS) for s in states]
    if rows:
        upsert = bulk.updating(("trigger_id", "key"), STATE_COLUMNS)
        await bulk.insert(conn, metric_states, STATE_COLUMNS, rows, upsert, repeatable=True)


async def drop_states(conn: AsyncConnection, idents: Sequence[tuple[str, str]]) -> None:
    """Forget keys with nothing left to remember (quiet, no streak, no value)."""
    for trigger_id, key in idents:
        await conn.execute(
            delete(metric_states).where(
                metric_states.c.trigger_id == trigger_id, metric_states.c.key == key
            )
        )


async def sweep(conn: AsyncConnection, now: datetime, longest: timedelta) -> int:
    """Forget samples older than the longest range, and runs that never gave one."""
    result = await conn.execute(
        delete(metric_runs).where(
            or_(
                and_(metric_runs.c.at.is_not(None), metric_runs.c.at <= now - longest),
                and_(metric_runs.c.at.is_(None), metric_runs.c.touched <= now - IN_FLIGHT_FOR),
            )
        )
    )
    return int(result.rowcount or 0)


async def drop(conn: AsyncConnection, trigger_ids: Sequence[str]) -> None:
    """Forget everything about these triggers (reset or deleted)."""
    if trigger_ids:
        for table in (metric_runs, metric_states):
            await conn.execute(delete(table).where(table.c.trigger_id.in_(trigger_ids)))


async def count_states(conn: AsyncConnection, trigger_ids: Sequence[str]) -> int:
    """The keys these triggers keep a state for."""
    if not trigger_ids:
        return 0
    count = await conn.scalar(
        select(func.count()).where(metric_states.c.trigger_id.in_(trigger_ids))
    )
    return int(count or 0)
