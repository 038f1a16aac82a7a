"""The asset graph: edges from materialization events only, walked breadth first, nearest
first, through cycles, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alerts import lineage
from tripwire.database import create_engine, migrate


def materialized(asset: str, *upstream: str, name: str | None = None) -> dict[str, Any]:
    resource = {"prefect.resource.id": asset}
    if name:
        resource["prefect.resource.name"] = name
    related = [{"prefect.resource.id": u, "prefect.resource.role": "asset"} for u in upstream]
    related.append(
        {"prefect.resource.id": "prefect.flow-run.1", "prefect.resource.role": "flow-run"}
    )
    return {
        "event": "prefect.asset.materialization.succeeded",
        "resource": resource,
        "related": related,
    }


def test_only_materializations_and_asset_roles_draw_edges() -> None:
    documents = [
        materialized("b://table", "a://raw", name="table"),
        {**materialized("c://other", "a://raw"), "event": "prefect.asset.referenced"},
    ]
    assert [
        (e["upstream"], e["downstream"], e["downstream_name"]) for e in lineage.edges_in(documents)
    ] == [("a://raw", "b://table", "table")]


async def test_the_walk_goes_breadth_first_and_through_cycles(database_url: str) -> None:
    db = create_engine(database_url)
    try:
        await migrate(db)
        async with db.begin() as conn:
            await lineage.record(
                conn,
                [
                    materialized("b://table", "a://raw", name="table"),
                    materialized("c://dashboard", "b://table", name="dashboard"),
                    materialized("d://model", "b://table"),
                    materialized("e://report", "c://dashboard", name="report"),
                    materialized("a://raw", "e://report"),  # a cycle back to the start
                ],
            )
            assert await lineage.downstream_of(conn, "a://raw") == [
                "table",
                "dashboard",
                "d://model",
                "report",
            ]
            assert await lineage.downstream_of(conn, "d://model") == []
    finally:
        await db.dispose()
