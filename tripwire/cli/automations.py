"""`tripwire automations ls|inspect|pause|resume|delete`."""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import quote

import typer

from tripwire.cli.api import ApiOption, call
from tripwire.cli.output import fail, table

automations_app = typer.Typer(
    help="List, inspect, pause, resume and delete automations.", no_args_is_help=True
)
ACTION_LISTS = ("actions", "actions_on_trigger", "actions_on_resolve")


def automation_path(ref: str) -> str:
    """The URL path of one automation, by name or id (names may hold spaces or slashes)."""
    return f"/api/automations/{quote(ref, safe='')}"


def _trigger_kind(trigger: dict[str, Any]) -> str:
    kind = str(trigger.get("type", "?"))
    if kind == "event" and trigger.get("posture") == "Proactive":
        return "event, proactive"
    return kind


@automations_app.command("ls")
def automations_ls(api: str = ApiOption) -> None:
    """List automations: name, state, trigger type, number of actions, id."""
    found = call(api, "GET", "/api/automations/")
    if not found:
        typer.echo("no automations yet; add some with `tripwire apply -f FILE`")
        return
    table(
        ("NAME", "STATE", "TRIGGER", "ACTIONS", "ID"),
        (
            (
                item["name"],
                "enabled" if item["enabled"] else "paused",
                _trigger_kind(item["trigger"]),
                str(sum(len(item.get(key) or []) for key in ACTION_LISTS)),
                item["id"],
            )
            for item in found
        ),
    )


@automations_app.command("inspect")
def automations_inspect(
    name: str = typer.Argument(..., help="The automation's name or id."),
    output: str = typer.Option("yaml", "--output", "-o", help="yaml or json."),
    api: str = ApiOption,
) -> None:
    """Print an automation's definition in Prefect's shape (`tripwire apply -f` takes it back)."""
    if output not in ("yaml", "json"):
        fail(f"--output {output!r} is not supported; use yaml or json")
    definition = call(api, "GET", automation_path(name))
    for stamp in ("created", "updated"):  # set by tripwire, not part of a definition
        definition.pop(stamp, None)
    if output == "json":
        typer.echo(json.dumps(definition, indent=2))
        return
    import yaml  # only this command writes YAML

    typer.echo(yaml.safe_dump(definition, sort_keys=False, allow_unicode=True), nl=False)


@automations_app.command("pause")
def automations_pause(
    name: str = typer.Argument(..., help="The automation's name or id."), api: str = ApiOption
) -> None:
    """Stop an automation from firing; its trigger state is kept."""
    call(api, "PATCH", automation_path(name), body={"enabled": False})
    typer.echo(f"paused {name}")


@automations_app.command("resume")
def automations_resume(
    name: str = typer.Argument(..., help="The automation's name or id."), api: str = ApiOption
) -> None:
    """Let a paused automation fire again."""
    call(api, "PATCH", automation_path(name), body={"enabled": True})
    typer.echo(f"resumed {name}")


@automations_app.command("delete")
def automations_delete(
    name: str = typer.Argument(..., help="The automation's name or id."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    api: str = ApiOption,
) -> None:
    """Delete an automation with its trigger state and decisions."""
    if not yes:
        if not sys.stdin.isatty():
            fail(f"not deleting {name}: no terminal to confirm on; pass --yes to delete it")
        if not typer.confirm(f"delete {name} with its trigger state and decisions?"):
            fail("nothing was deleted")
    call(api, "DELETE", automation_path(name))
    typer.echo(f"deleted {name}")
