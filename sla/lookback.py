"""Events already stored that a window opened now should count (an SLA applied after
today's refresh must not report it missing)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventOrder
from events.store import EventStore
from sla.evaluator import Lookback, Watched

GLOB_CHARS = "*?["
PAGES = 5  # newest first, at most PAGES * 500 events per window opened


def prefix(glob: str) -> str:
    """The literal start of a name glob (`dbt.model.*` -> `dbt.model.`)."""
    cut = min((i for i in (glob.find(c) for c in GLOB_CHARS) if i >= 0), default=len(glob))
    return glob[:cut]


def store_lookback(store: EventStore) -> Lookback:
    """Stored events in a time range whose names may match the SLA, newest first."""

    async def recent(watched: Watched, since: datetime, until: datetime) -> list[dict[str, Any]]:
        flt = EventFilter(
            occurred=EventOccurredFilter(since=since, until=until),
            event=EventNameFilter(prefix=sorted({prefix(g) for g in watched.sla.expect})),
            order=EventOrder.DESC,
        )
        found: list[dict[str, Any]] = []
        after = None
        for _ in range(PAGES):
            page = await store.read(flt, limit=500, after=after)
            found += [
                e.model_dump(mode="json") for e in page.events if watched.expect.fullmatch(e.event)
            ]
            if page.next_token is None or not page.events:
                break
            last = page.events[-1]
            after = (last.occurred.isoformat(), str(last.id))
        return found[::-1]  # oldest first, as events are evaluated

    return recent
