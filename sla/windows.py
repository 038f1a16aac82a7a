"""SLA windows in the database: load them under a lock, save what changed.

Writers (workers with events, the timer with due windows) take a transaction-scoped
advisory lock per (SLA, key) on PostgreSQL, as trigger windows do, so no two
transactions decide about the same window at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from events import clock
from sla.tables import sla_windows
from triggers.state import lock

WindowId = tuple[str, str]  # (SLA id, for_each key as JSON)


@dataclass
class Window:
    """What one SLA watches for one key now."""

    sla_id: str
    key: str
    labels: dict[str, str]
    fingerprint: str
    opened: datetime
    deadline: datetime
    due: datetime
    armed: bool = True
    warn_at: datetime | None = None
    met: datetime | None = None
    missed: datetime | None = None
    missed_id: str | None = None
    last_seen: datetime | None = None
    last_event: str | None = None

    @property
    def ident(self) -> WindowId:
        return (self.sla_id, self.key)


_COLUMNS = [f.name for f in fields(Window)]  # a shallow copy: asdict deep-copies labels


def _from_row(row: Any) -> Window:
    return Window(**{k: v for k, v in row._mapping.items() if k != "updated"})


async def lock_windows(conn: AsyncConnection, idents: Iterable[WindowId]) -> None:
    await lock(conn, [f"sla:{sla}:{key}" for sla, key in idents])


async def load(conn: AsyncConnection, idents: Sequence[WindowId]) -> dict[WindowId, Window]:
    """The stored windows among `idents`."""
    if not idents:
        return {}
    found: dict[WindowId, Window] = {}
    for start in range(0, len(idents), 500):  # keep under SQLite's bound-parameter limit
        chunk = idents[start : start + 500]
        query = select(sla_windows).where(
            tuple_(sla_windows.c.sla_id, sla_windows.c.key).in_(chunk)
        )
        for row in (await conn.execute(query)).all():
            window = _from_row(row)
            found[window.ident] = window
    return found


async def due(
    conn: AsyncConnection, sla_ids: Sequence[str], now: datetime, limit: int
) -> list[Window]:
    """Windows whose timer or warning is due by `now`, earliest first."""
    if not sla_ids:
        return []
    query = (
        select(sla_windows)
        .where(
            sla_windows.c.sla_id.in_(sla_ids),
            or_(
                and_(sla_windows.c.armed.is_(True), sla_windows.c.due <= now),
                sla_windows.c.warn_at <= now,
            ),
        )
        .order_by(sla_windows.c.due)
        .limit(limit)
    )
    return [_from_row(row) for row in (await conn.execute(query)).all()]


async def next_due(conn: AsyncConnection, sla_ids: Sequence[str]) -> datetime | None:
    """The earliest instant a timer or a warning of these SLAs comes due."""
    if not sla_ids:
        return None
    armed = await conn.scalar(
        select(func.min(sla_windows.c.due)).where(
            sla_windows.c.sla_id.in_(sla_ids), sla_windows.c.armed.is_(True)
        )
    )
    warning = await conn.scalar(
        select(func.min(sla_windows.c.warn_at)).where(sla_windows.c.sla_id.in_(sla_ids))
    )
    found: list[datetime] = [t for t in (armed, warning) if t is not None]
    return min(found) if found else None


async def existing_keys(conn: AsyncConnection, sla_ids: Sequence[str]) -> set[WindowId]:
    """Which of these SLAs have a window for the empty key (the unkeyed SLAs' one)."""
    if not sla_ids:
        return set()
    query = select(sla_windows.c.sla_id, sla_windows.c.key).where(
        sla_windows.c.sla_id.in_(sla_ids), sla_windows.c.key == "[]"
    )
    return {(r.sla_id, r.key) for r in (await conn.execute(query)).all()}


async def save(
    conn: AsyncConnection, changed: Iterable[Window], removed: Iterable[WindowId]
) -> None:
    """Write changed windows (insert or replace) and delete removed ones."""
    gone = list(removed)
    now = clock.now()
    rows = [{name: getattr(w, name) for name in _COLUMNS} | {"updated": now} for w in changed]
    idents = gone + [(r["sla_id"], r["key"]) for r in rows]
    if idents:
        await conn.execute(
            delete(sla_windows).where(tuple_(sla_windows.c.sla_id, sla_windows.c.key).in_(idents))
        )
    if rows:
        await conn.execute(sla_windows.insert(), rows)


async def sweep(conn: AsyncConnection, missed_before: datetime) -> None:
    """Forget misses that never recovered and whose timer is off, once long past."""
    await conn.execute(
        delete(sla_windows).where(
            sla_windows.c.armed.is_(False), sla_windows.c.missed < missed_before
        )
    )
