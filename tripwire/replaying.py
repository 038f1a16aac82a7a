"""`tripwire test`: where the recorded events come from and how the report reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import orjson
from pydantic import ValidationError

from events import clock
from events.filters import EventFilter
from events.model import ReceivedEvent
from events.parsing import describe
from events.store import EventStore
from triggers.replay import ReplayReport
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


async def events_from_store(database_url: str, since: timedelta) -> list[ReceivedEvent]:
    """Stored events of the last `since`, oldest first."""
    engine = create_engine(database_url)
    store = EventStore(engine)
    flt = EventFilter.model_validate(
        {"occurred": {"since": (clock.now() - since).isoformat()}, "order": "ASC"}
    )
    events: list[ReceivedEvent] = []
    after = None
    try:
        while True:
            page = await store.read(flt, limit=1000, after=after)
            events += page.events
            if page.next_token is None or not page.events:
                return events
            last = page.events[-1]
            after = (last.occurred.isoformat(), str(last.id))
    finally:
        await engine.dispose()


def _at(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def render(report: ReplayReport) -> str:
    """The report for people: one line per firing, then a summary."""
    lines = []
    for firing in report.firings:
        labels = " ".join(f"{k}={v}" for k, v in firing.labels.items())
        cause = f"on {firing.event} {firing.event_id}" if firing.event_id else ""
        detail = "  ".join(part for part in (labels, cause) if part)
        lines.append(
            f"{_at(firing.at)}  {firing.automation}  {firing.state}  {firing.why}"
            + (f"  [{detail}]" if detail else "")
        )
    automations = len({f.automation for f in report.firings})
    summary = (
        f"{report.events} events replayed: {len(report.firings)} firing(s) of "
        f"{automations} automation(s)"
    )
    if report.stopped:
        summary += f"; {report.stopped} stopped by the cascade guard"
    if not report.firings:
        summary += "; nothing would have fired (`tripwire explain` shows why on a live engine)"
    return "\n".join([*lines, summary])
