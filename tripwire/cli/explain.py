"""`tripwire explain`: why an automation fired or did not, with hints when it never decided."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import typer

from tripwire.cli.api import ApiOption, call, request
from tripwire.cli.automations import automation_path
from tripwire.cli.output import when

commands = typer.Typer()


def _expected(trigger: dict[str, Any]) -> list[str]:
    """Every event name (glob) the trigger's event triggers expect."""
    if trigger.get("type") == "event":
        return list(trigger.get("expect") or [])
    if trigger.get("type") == "metric":  # measured from flow-run state changes
        return ["prefect.flow-run.*"]
    return [name for child in trigger.get("triggers", []) for name in _expected(child)]


def _decision_line(decision: dict[str, Any]) -> str:
    decided = when(decision["decided"]) if decision["decided"] else "not recorded, now"
    event = f"{decision['event']} {decision['event_id']}" if decision["event_id"] else "(no event)"
    return f"{decided}  {decision['outcome']:<9}  {event}  {decision['reason']}"


def _hints(api: str, automation: dict[str, Any], event: str | None) -> list[str]:
    """What to check when an automation recorded no decisions."""
    expected = _expected(automation["trigger"])
    names = ", ".join(expected) if expected else "any event (expect is empty)"
    hints = [
        f"does the event's name match the trigger's expect: {names}?",
        "do its resource and related resources match `match` / `match_related`?",
    ]
    if event and request(api, "GET", f"/api/events/{quote(event, safe='')}").status == 404:
        hints.append(f"event {event} is not stored (yet): check `tripwire events ls`")
    if not automation["enabled"]:
        name = automation["name"]
        hints.append(f"{name} is paused: `tripwire automations resume {name}`")
    hints.append(
        "is a worker running (`tripwire up` or `tripwire serve worker`)? "
        "Only workers evaluate events."
    )
    return hints


@commands.command()
def explain(
    name: str = typer.Argument(..., help="The automation's name or id."),
    event: str = typer.Option(None, "--event", help="Only decisions about this event id."),
    last: int = typer.Option(20, "--last", min=1, max=1000, help="The newest this many."),
    api: str = ApiOption,
) -> None:
    """Why an automation fired or did not: its recent decisions, oldest first."""
    automation = call(api, "GET", automation_path(name))
    params: dict[str, Any] = {"last": last}
    if event:
        params["event_id"] = event
    decisions = call(api, "GET", automation_path(name) + "/decisions", params=params)
    for decision in decisions:
        typer.echo(_decision_line(decision))
    if decisions:
        return
    about = f" about event {event}" if event else ""
    typer.echo(f"no decisions recorded for {automation['name']}{about}. Things to check:")
    for hint in _hints(api, automation, event):
        typer.echo(f"  - {hint}")
