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
# A Prefect deployment's changes are to its SLAs, one line each.
NOUNS = {"deployments": "SLA"}


def change_line(section: str, noun: str, change: dict[str, Any], dry_run: bool) -> str:
    """One line of `apply`: "created SLA x", or in a dry run "would create SLA x", with the
    evaluation state the change costs. An automation is named bare (`noun` is empty)."""
    kind, windows = change["kind"], change["open_windows"]
    verb = f"would {VERBS[kind]}" if dry_run and kind != "unchanged" else kind
    line = f"{verb} {noun} {change['name']}" if noun else f"{verb} {change['name']}"
    if section == "automations" and kind == "updated":
        resets = len(change["reset_triggers"])
        if not resets:
            return f"{line} (trigger state kept)"
        return (
            f"{line} (resets state of {plural(resets, 'trigger')}, "
            f"{plural(windows, 'open window')})"
        )
    if section in ("slas", "deployments") and windows:
        return f"{line} (drops the state of {windows} key(s))"
    if kind == "deleted" and windows:
        return f"{line} (drops {plural(windows, 'open window')})"
    return line


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
    """Create or update automations, SLAs, connections (by name) and webhooks (by slug) from
    files, all in one transaction; the same files again change nothing. A prefect.yaml
    gives its deployments' SLAs and triggers: each deployment's `sla:` list replaces the
    SLAs it had, its `triggers:` list the automations that run it."""
    from tripwire.definitions import APPLIED

    definitions = load_definitions(files, "nothing was applied")
    if definitions.sources:
        typer.echo(
            "note: sources are not applied to a running engine: `tripwire up --automations` "
            "follows them from the start, `serve api` with TRIPWIRE_PREFECT_FOLLOW=true",
            err=True,
        )
    body = {
        s.name: [item.model_dump(mode="json", by_alias=True) for item in definitions.of(s.name)]
        for s in APPLIED
    }
    if prune and not any(body.values()):
        fail(
            f"no automations in {', '.join(map(str, files))}; --prune would delete every "
            "automation, so nothing was applied"
        )
    # One request, one transaction: every kind is applied, or none. A kind the files do not
    # define is left alone, with --prune too.
    params = {"prune": str(prune).lower(), "dry_run": str(dry_run).lower()}
    changes = call(api, "POST", "/api/definitions/apply", body=body, params=params)
    for section in APPLIED:
        noun = "" if section.default else NOUNS.get(section.name, section.noun)
        for change in changes.get(section.name, []):
            typer.echo(change_line(section.name, noun, change, dry_run))
    if dry_run:
        typer.echo("dry run: nothing was changed")
