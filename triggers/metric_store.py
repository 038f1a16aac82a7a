"""Metric trigger state in the database: the flow runs each trigger measures
(`metric_runs`), where each of its keys stands (`metric_states`), and the aggregate a
tick reads. Everything runs on the connection of the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from triggers.metrics import KeyState, RunProgress
from triggers.state import upsert
from triggers.tables import metric_runs, metric_states

IN_FLIGHT_FOR = timedelta(days=7)  # a run with no sample yet is forgotten after this long

Aggregate = tuple[int, float]  # runs with a sample in range, the sum of their samples


def run_lock(trigger_id: str, run: str) -> str:
    return f"metric-run:{trigger_id}:{run}"


def trigger_lock(trigger_id: str) -> str:
    return f"metric:{trigger_id}"


async def load_runs(
    conn: AsyncConnection, idents: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], RunProgress]:
    """The stored progress of these (trigger, run) pairs."""
    wanted = set(idents)
    found: dict[tuple[str, str], RunProgress] = {}
    if not wanted:
        return found
    query = select(metric_runs).where(
        metric_runs.c.trigger_id.in_({t for t, _ in wanted}),
        metric_runs.c.run.in_({r for _, r in wanted}),
    )
    for row in (await conn.execute(query)).mappings():
        progress = RunProgress(**row)
        if progress.ident in wanted:
            found[progress.ident] = progress
    return found


async def save_runs(conn: AsyncConnection, runs: Iterable[RunProgress]) -> None:
    rows = [asdict(r) for r in runs]
    if rows:
        await conn.execute(upsert(conn, metric_runs, ["trigger_id", "run"]), rows)


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


async def save_states(conn: AsyncConnection, states: Iterable[KeyState]) -> None:
    rows = [asdict(s) for s in states]
    if rows:
        await conn.execute(upsert(conn, metric_states, ["trigger_id", "key"]), rows)


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
