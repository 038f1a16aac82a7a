"""Alerts and notification groups in the database, read and written inside the caller's
transaction.

Writers lock what they will change first (an advisory lock per alert fingerprint and
per group on PostgreSQL, as trigger windows do; SQLite has one writer), so a worker
storing a firing and the timer resolving the same alert never decide past each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.groups import Group
from alerts.model import Alert
from alerts.tables import alert_firings, alert_group_members, alert_groups, alerts
from events import clock
from events.bulk import chunked
from triggers.state import lock, upsert

CHUNK = 500  # keys per IN list: under SQLite's bound-parameter limit


async def lock_alerts(conn: AsyncConnection, fingerprints: Iterable[str]) -> None:
    await lock(conn, [f"alert:{f}" for f in fingerprints])


async def lock_groups(conn: AsyncConnection, group_ids: Iterable[str]) -> None:
    await lock(conn, [f"alert-group:{g}" for g in group_ids])


async def _alerts_where(
    conn: AsyncConnection, column: ColumnElement[Any], keys: Sequence[str]
) -> list[Alert]:
    """The alerts whose `column` is one of `keys`."""
    found: list[Alert] = []
    for chunk in chunked(keys, CHUNK):
        rows = await conn.execute(select(alerts).where(column.in_(chunk)))
        found += [Alert.from_row(row) for row in rows]
    return found


async def open_alerts(conn: AsyncConnection, fingerprints: Sequence[str]) -> dict[str, Alert]:
    """The open alert of each fingerprint that has one."""
    found = await _alerts_where(conn, alerts.c.open_fingerprint, fingerprints)
    return {alert.fingerprint: alert for alert in found}


async def alerts_by_id(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Alert]:
    return {alert.id: alert for alert in await _alerts_where(conn, alerts.c.id, ids)}


async def save_alerts(conn: AsyncConnection, changed: Iterable[Alert]) -> None:
    now = clock.now()
    rows = [{**a.row(), "updated": now} for a in changed]
    if rows:
        await conn.execute(upsert(conn, alerts, ["id"]), rows)


async def add_firings(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        statement = upsert(conn, alert_firings, ["alert_id", "firing_id"])
        await conn.execute(statement, rows)


async def firings_of(conn: AsyncConnection, alert_id: str, limit: int = 100) -> list[Any]:
    """The firings that fed an alert, newest first."""
    query = (
        select(alert_firings)
        .where(alert_firings.c.alert_id == alert_id)
        .order_by(alert_firings.c.fired.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def alerts_due(conn: AsyncConnection, now: datetime, limit: int) -> list[Alert]:
    """Open alerts whose resolve_after or acknowledgement ran out by `now`."""
    query = (
        select(alerts)
        .where(
            alerts.c.open_fingerprint.is_not(None),
            or_(alerts.c.resolve_at <= now, alerts.c.acknowledged_until <= now),
        )
        .limit(limit)
    )
    return [Alert.from_row(r) for r in (await conn.execute(query)).all()]


async def next_alert_due(conn: AsyncConnection) -> datetime | None:
    query = select(func.min(alerts.c.resolve_at), func.min(alerts.c.acknowledged_until)).where(
        alerts.c.open_fingerprint.is_not(None)
    )
    row = (await conn.execute(query)).one()
    times = [t for t in row if t is not None]
    return min(times) if times else None


# -- groups ------------------------------------------------------------------------------


async def load_groups(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Group]:
    found: dict[str, Group] = {}
    for chunk in chunked(ids, CHUNK):
        for row in await conn.execute(select(alert_groups).where(alert_groups.c.id.in_(chunk))):
            group = Group.from_row(row)
            found[group.id] = group
    return found


async def save_groups(conn: AsyncConnection, changed: Iterable[Group]) -> None:
    now = clock.now()
    rows = [{**g.row(), "updated": now} for g in changed]
    if rows:
        await conn.execute(upsert(conn, alert_groups, ["id"]), rows)


async def add_members(conn: AsyncConnection, pairs: Iterable[tuple[str, str]]) -> None:
    """(group id, alert id) pairs; a pair already there is kept."""
    now = clock.now()
    rows = [{"group_id": g, "alert_id": a, "added": now} for g, a in pairs]
    if rows:
        statement = upsert(conn, alert_group_members, ["group_id", "alert_id"])
        await conn.execute(statement, rows)


async def members(conn: AsyncConnection, group_id: str) -> list[Alert]:
    """The alerts in a group, newest first."""
    query = (
        select(alerts)
        .join(alert_group_members, alert_group_members.c.alert_id == alerts.c.id)
        .where(alert_group_members.c.group_id == group_id)
        .order_by(alerts.c.last_fired.desc())
    )
    return [Alert.from_row(r) for r in (await conn.execute(query)).all()]


async def remove_members(conn: AsyncConnection, group_id: str, alert_ids: Sequence[str]) -> None:
    if alert_ids:
        await conn.execute(
            delete(alert_group_members).where(
                and_(
                    alert_group_members.c.group_id == group_id,
                    alert_group_members.c.alert_id.in_(alert_ids),
                )
            )
        )


async def groups_of(conn: AsyncConnection, alert_ids: Sequence[str]) -> list[str]:
    """The groups the alerts are in."""
    found: set[str] = set()
    for chunk in chunked(alert_ids, CHUNK):
        query = select(alert_group_members.c.group_id).where(
            alert_group_members.c.alert_id.in_(chunk)
        )
        found.update(r[0] for r in await conn.execute(query))
    return sorted(found)


async def groups_due(conn: AsyncConnection, now: datetime, limit: int) -> list[str]:
    query = (
        select(alert_groups.c.id)
        .where(alert_groups.c.due <= now)
        .order_by(alert_groups.c.due)
        .limit(limit)
    )
    return [r[0] for r in await conn.execute(query)]


async def next_group_due(conn: AsyncConnection) -> datetime | None:
    value: datetime | None = (
        await conn.execute(select(func.min(alert_groups.c.due)))
    ).scalar_one_or_none()
    return value
