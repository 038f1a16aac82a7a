"""`tripwire apply`: make a running engine hold what the files define, and say what changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tripwire.cli.api import ApiOption, call
from tripwire.cli.definitions import load_definitions
from tripwire.cli.output import fail, plural

commands = typer.Typer()

# What `apply --dry-run` says it would do, per kind of change.
VERBS = {"created": "create", "updated": "update", "deleted": "delete"}


def change_line(kind: str, what: str, dry_run: bool) -> str:
    """One line of `apply`: "created SLA x", or in a dry run "would create SLA x"."""
    verb = f"would {VERBS[kind]}" if dry_run and kind != "unchanged" else kind
    return f"{verb} {what}"


def _automation_line(change: dict[str, Any], dry_run: bool) -> str:
    """An automation's change, with the trigger state and open windows it costs."""
    kind, name = change["kind"], change["name"]
    line = change_line(kind, name, dry_run)
    resets, windows = len(change["reset_triggers"]), change["open_windows"]
    if kind == "updated":
        if not resets:
            return f"{line} (trigger state kept)"
        return (
            f"{line} (resets state of {plural(resets, 'trigger')}, "
            f"{plural(windows, 'open window')})"
        )
    if kind == "deleted" and windows:
        return f"{line} (drops {plural(windows, 'open window')})"
    return line


def _sla_line(change: dict[str, Any], dry_run: bool) -> str:
    line = change_line(change["kind"], f"SLA {change['name']}", dry_run)
    if change["open_windows"]:
        line += f" (drops the state of {change['open_windows']} key(s))"
    return line


def _apply(api: str, kind: str, items: list[Any], params: dict[str, str]) -> list[Any]:
    """POST one kind of definition to /api/{kind}/apply; the changes the engine made."""
    body = {kind: [item.model_dump(mode="json", by_alias=True) for item in items]}
    changes: list[Any] = call(api, "POST", f"/api/{kind}/apply", body=body, params=params)
    return changes


@commands.command()
def apply(
    files: list[Path] = typer.Option(..., "--file", "-f", help="A file or folder (repeatable)."),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Delete automations, connections, webhooks and SLAs the files do not define. "
        "Connections (webhooks, SLAs) are pruned only when the files define at least one "
        "connection (webhook, SLA), automations only when they define at least one automation.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would change; change nothing."
    ),
    api: str = ApiOption,
) -> None:
    """Create or update automations, connections (by name) and webhooks (by slug) from files;
    the same files again change nothing."""
    definitions = load_definitions(files, "nothing was applied")
    automations, connections = definitions.automations, definitions.connections
    webhooks, slas = definitions.webhooks, definitions.slas
    if definitions.sources:
        typer.echo(
            "note: sources are not applied to a running engine: `tripwire up --automations` "
            "follows them from the start, `serve api` with TRIPWIRE_PREFECT_FOLLOW=true",
            err=True,
        )
    if prune and not (automations or connections or webhooks or slas):
        fail(
            f"no automations in {', '.join(map(str, files))}; --prune would delete every "
            "automation, so nothing was applied"
        )
    params = {"prune": str(prune).lower(), "dry_run": str(dry_run).lower()}
    if connections:  # first, so the automations' actions find them
        for change in _apply(api, "connections", connections, params):
            typer.echo(change_line(change["change"], f"connection {change['name']}", dry_run))
    if webhooks:
        for change in _apply(api, "webhooks", webhooks, params):
            typer.echo(change_line(change["change"], f"webhook {change['slug']}", dry_run))
    if slas:
        for change in _apply(api, "slas", slas, params):
            typer.echo(_sla_line(change, dry_run))
    # A file of connections, webhooks or SLAs only leaves the automations alone.
    if automations or not (connections or webhooks or slas):
        for change in _apply(api, "automations", automations, params):
            typer.echo(_automation_line(change, dry_run))
    if dry_run:
        typer.echo("dry run: nothing was changed")
