"""Causal order: an event that names the event it `follows` is evaluated after it.

As in Prefect: an event whose leader has not been seen is held back (in the database, so
a restart keeps it) for up to 15 minutes after it was received, and evaluated right
after its leader arrives; one whose leader never comes is evaluated on its own when its
wait is over. "Seen" means stored: events are stored in the transaction that evaluates
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from events import bulk
from events.tables import events
from triggers.tables import deferred_events

WAIT = timedelta(minutes=15)  # Prefect's PRECEDING_EVENT_LOOKBACK

Document = dict[str, Any]


def _received(document: Document) -> datetime:
    return datetime.fromisoformat(document["received"])


async def _stored(conn: AsyncConnection, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    rows = await conn.execute(select(events.c.id).where(events.c.id.in_(list(ids))))
    return {row[0] for row in rows}


async def _release(conn: AsyncConnection, leaders: list[str]) -> list[Document]:
    """Take the followers waiting for these events out of the waiting room (every batch
    asks, so this is hand-written SQL: one round trip)."""
    sql = 'DELETE FROM deferred_events WHERE "follows" IN ({}) RETURNING "body", "received"'
    rows = await bulk.execute_in(conn, sql, leaders)
    rows.sort(key=lambda row: bulk.read_time(row[1]))
    return [orjson.loads(row[0]) for row in rows]


async def causal_order(
    conn: AsyncConnection, documents: Sequence[Document], now: datetime
) -> list[Document]:
    """The batch in evaluation order: leaders before followers, early followers held
    back, and followers released by this batch's events put after their leaders."""
    in_batch = {d["id"] for d in documents}
    wanted = {d["follows"] for d in documents if d.get("follows")} - in_batch
    seen = in_batch | await _stored(conn, wanted)
    early = [
        d
        for d in documents
        if d.get("follows") and d["follows"] not in seen and _received(d) > now - WAIT
    ]
    if early:
        await conn.execute(
            deferred_events.insert(),
            [
                {
                    "event_id": d["id"],
                    "follows": d["follows"],
                    "received": _received(d),
                    "body": orjson.dumps(d).decode(),
                }
                for d in early
            ],
        )
    held = {d["id"] for d in early}
    waiting: dict[str, list[Document]] = {}  # leader id -> followers later in this batch
    ordered: list[Document] = []
    emitted: set[str] = set()

    def emit(document: Document) -> None:
        ordered.append(document)
        emitted.add(document["id"])
        for follower in waiting.pop(document["id"], []):
            emit(follower)

    for document in documents:
        if document["id"] in held:
            continue
        leader = document.get("follows")
        if leader is not None and leader in in_batch and leader not in emitted | held:
            waiting.setdefault(leader, []).append(document)
        else:
            emit(document)
    for followers in waiting.values():  # a cycle, or a leader that was itself held
        ordered += followers
    position = 0
    while position < len(ordered):
        released = await _release(conn, [d["id"] for d in ordered[position:]])
        position = len(ordered)
        ordered += released
    return ordered


async def overdue(conn: AsyncConnection, now: datetime) -> list[Document]:
    """Followers that waited out their leader: evaluate them now, oldest first."""
    result = await conn.execute(
        delete(deferred_events)
        .where(deferred_events.c.received <= now - WAIT)
        .returning(deferred_events.c.body, deferred_events.c.received)
    )
    return [orjson.loads(row.body) for row in sorted(result.all(), key=lambda r: r.received)]
