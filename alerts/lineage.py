"""What is downstream of a late or failing resource: the asset graph that Prefect's
`prefect.asset.materialization.*` events draw (each names its upstream assets as related
resources in role `asset`), kept as edges from the events tripwire stores, and walked from
the alert's resource when the alert opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.tables import asset_edges
from events import clock
from triggers.state import upsert

MATERIALIZED = "prefect.asset.materialization."
MAX_NODES = 200  # a walk stops here: an alert names what a person can read
MAX_DEPTH = 10


def edges_in(documents: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """(upstream, downstream) pairs from materialization events, newest name kept."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    now = clock.now()
    for document in documents:
        if not document["event"].startswith(MATERIALIZED):
            continue
        resource = document["resource"]
        downstream = resource.get("prefect.resource.id")
        if not downstream:
            continue
        for related in document.get("related") or ():
            upstream = related.get("prefect.resource.id")
            if related.get("prefect.resource.role") == "asset" and upstream:
                found[(upstream, downstream)] = {
                    "upstream": upstream,
                    "downstream": downstream,
                    "downstream_name": resource.get("prefect.resource.name"),
                    "seen": now,
                }
    return list(found.values())


async def record(conn: AsyncConnection, documents: Sequence[dict[str, Any]]) -> None:
    """Keep the edges the stored events draw."""
    rows = edges_in(documents)
    if rows:
        await conn.execute(upsert(conn, asset_edges, ["upstream", "downstream"]), rows)


async def known(conn: AsyncConnection) -> bool:
    """Whether any lineage is kept at all: without it, no alert walks it."""
    return (await conn.execute(select(asset_edges.c.upstream).limit(1))).first() is not None


async def downstream_of(conn: AsyncConnection, resource_id: str) -> list[str]:
    """Everything downstream of `resource_id`, nearest first, by name where one is known;
    at most MAX_NODES, MAX_DEPTH steps away."""
    seen = {resource_id}
    names: list[str] = []
    level = [resource_id]
    for _ in range(MAX_DEPTH):
        if not level or len(names) >= MAX_NODES:
            break
        query = (
            select(asset_edges.c.downstream, asset_edges.c.downstream_name)
            .where(asset_edges.c.upstream.in_(level))
            .order_by(asset_edges.c.downstream)
        )
        following: list[str] = []
        for downstream, name in (await conn.execute(query)).all():
            if downstream not in seen:
                seen.add(downstream)
                following.append(downstream)
                names.append(name or downstream)
        level = following
    return names[:MAX_NODES]
