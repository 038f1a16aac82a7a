"""`tripwire test`: where the recorded events come from (a file, or the store)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
from pydantic import ValidationError

from events import clock
from events.filters import EventFilter
from events.model import ReceivedEvent
from events.parsing import describe
from events.store import EventStore
from tripwire.database import create_engine


class RecordedEventsError(ValueError):
    """A recorded-events file that cannot be read; the message names the line."""


def read_events_file(path: Path) -> list[ReceivedEvent]:
    """Events from JSON lines (one per line) or a JSON array; `received` defaults to
    `occurred`, so a file of plain events replays as if each arrived when it happened."""
    text = path.read_text()
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise RecordedEventsError(f"{path}: not valid JSON ({exc})") from None
        numbered = list(enumerate(items, start=1))
        where = "item"
    else:
        numbered = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    numbered.append((number, orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    raise RecordedEventsError(
                        f"{path}:{number}: not valid JSON ({exc}); one event per line"
                    ) from None
        where = "line"
    events = []
    for number, item in numbered:
        if isinstance(item, dict) and "received" not in item and "occurred" in item:
            item = {**item, "received": item["occurred"]}
        try:
            events.append(ReceivedEvent.model_validate(item))
        except ValidationError as exc:
            raise RecordedEventsError(f"{path}:{where} {number}: {describe(exc)}") from None
    return events


async def events_from_database(database_url: str, since: timedelta) -> list[ReceivedEvent]:
    """Stored events of the last `since`, oldest first, from the database at this URL."""
    engine = create_engine(database_url)
    try:
        return await stored_events(EventStore(engine), since)
    finally:
        await engine.dispose()


async def stored_events(
    store: EventStore, since: timedelta, limit: int | None = None
) -> list[ReceivedEvent]:
    """Stored events of the last `since`, oldest first; the oldest `limit` when given."""
    flt = EventFilter.model_validate(
        {"occurred": {"since": (clock.now() - since).isoformat()}, "order": "ASC"}
    )
    events: list[ReceivedEvent] = []
    after = None
    while limit is None or len(events) < limit:
        page = await store.read(flt, limit=1000, after=after, count=False)
        events += page.events
        if page.next_token is None or not page.events:
            break
        last = page.events[-1]
        after = (last.occurred.isoformat(), str(last.id))
    return events if limit is None else events[:limit]
