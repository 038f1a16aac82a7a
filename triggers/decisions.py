"""Reading and trimming decision traces ("why did / didn't it fire")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from triggers.tables import automations, decisions


@dataclass(frozen=True)
class DecisionRecord:
    """One stored decision."""

    id: int
    automation_id: str
    trigger_id: str
    event_id: str | None
    event: str | None
    occurred: datetime | None
    decided: datetime
    outcome: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "automation_id": self.automation_id,
            "trigger_id": self.trigger_id,
            "event_id": self.event_id,
            "event": self.event,
            "occurred": self.occurred.isoformat() if self.occurred else None,
            "decided": self.decided.isoformat(),
            "outcome": self.outcome,
            "reason": self.reason,
        }


async def read_decisions(
    engine: AsyncEngine, automation_id: str, *, event_id: str | None = None, last: int = 20
) -> list[DecisionRecord]:
    """The newest `last` decisions of an automation (optionally about one event), oldest first."""
    query = select(decisions).where(decisions.c.automation_id == automation_id)
    if event_id is not None:
        query = query.where(decisions.c.event_id == event_id)
    query = query.order_by(decisions.c.id.desc()).limit(max(1, last))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [DecisionRecord(**row._mapping) for row in reversed(rows)]


async def trim_decisions(engine: AsyncEngine, keep: int) -> int:
    """Keep the newest `keep` decisions per automation; returns how many were deleted."""
    removed = 0
    async with engine.begin() as conn:
        ids = (await conn.execute(select(automations.c.id))).scalars().all()
        for automation_id in ids:
            floor = await conn.scalar(
                select(decisions.c.id)
                .where(decisions.c.automation_id == automation_id)
                .order_by(decisions.c.id.desc())
                .offset(keep)
                .limit(1)
            )
            if floor is not None:
                result = await conn.execute(
                    delete(decisions).where(
                        decisions.c.automation_id == automation_id, decisions.c.id <= floor
                    )
                )
                removed += int(result.rowcount or 0)
    return removed
