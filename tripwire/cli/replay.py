"""`tripwire test`: replay recorded events through automation files, no engine needed."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from events import clock
from tripwire.cli.config import load_settings
from tripwire.cli.definitions import load_definitions
from tripwire.cli.durations import duration, since_window
from tripwire.cli.output import fail, when

if TYPE_CHECKING:
    from events.model import ReceivedEvent
    from triggers.replay import ReplayReport

commands = typer.Typer()


def _recorded(events_file: Path | None, home: Path | None, window: str) -> list[ReceivedEvent]:
    """The events of --events FILE, else of this engine's store within --since."""
    from tripwire.replaying import RecordedEventsError, events_from_database, read_events_file

    if events_file is None:
        settings = load_settings(home)
        return asyncio.run(
            events_from_database(settings.resolved_database_url, since_window(window))
        )
    if not events_file.exists():
        fail(f"no such file: {events_file}")
    try:
        return read_events_file(events_file)
    except RecordedEventsError as exc:
        fail(str(exc))


def _end(until: str | None, events: list[ReceivedEvent]) -> datetime | None:
    """Where --until stops the clock: a time, or a duration after the last event."""
    if until is None:
        return None
    span = duration(until)
    if span is not None:
        return max((e.occurred for e in events), default=clock.now()) + span
    try:
        return datetime.fromisoformat(until)
    except ValueError:
        fail(f"--until {until!r} is neither a time (ISO 8601) nor a duration like 2h")


def render(report: ReplayReport) -> str:
    """The report for people: one line per firing, then a summary."""
    lines = []
    for firing in report.firings:
        labels = " ".join(f"{k}={v}" for k, v in firing.labels.items())
        cause = f"on {firing.event} {firing.event_id}" if firing.event_id else ""
        detail = "  ".join(part for part in (labels, cause) if part)
        lines.append(
            f"{when(firing.at)}  {firing.automation}  {firing.state}  {firing.why}"
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


@commands.command("test")
def replay_automations(
    files: list[Path] = typer.Option(..., "--file", "-f", help="Automations (repeatable)."),
    events_file: Path = typer.Option(
        None, "--events", help="Recorded events: JSON lines, or a JSON array."
    ),
    from_store: bool = typer.Option(
        False, "--from-store", help="Replay this engine's stored events instead."
    ),
    since: str = typer.Option("24h", help="With --from-store: how far back, e.g. 24h."),
    until: str = typer.Option(
        None,
        help="Run the clock on to this ISO time, or this long after the last event (e.g. 2h), "
        "so proactive windows ending by then fire.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
    home: Path = typer.Option(None, envvar="TRIPWIRE_HOME"),
) -> None:
    """Replay recorded events through automations: what would have fired, when and why."""
    from triggers.replay import replay

    if (events_file is None) == (not from_store):
        fail("give recorded events with --events FILE, or --from-store (not both)")
    definitions = load_definitions(files, "nothing was replayed")
    events = _recorded(events_file, home, since)
    automations = [*definitions.deployment_automations, *definitions.automations]
    report = asyncio.run(replay(automations, events, until=_end(until, events)))
    if as_json:
        body = {
            "events": report.events,
            "firings": [f.as_json() for f in report.firings],
            "stopped": report.stopped,
        }
        typer.echo(json.dumps(body, indent=2))
    else:
        typer.echo(render(report))
