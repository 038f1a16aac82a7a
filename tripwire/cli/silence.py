"""`tripwire silence add|ls|expire`: hold notifications back by hand."""

from __future__ import annotations

import getpass
import json
from typing import Any
from urllib.parse import quote

import typer

from tripwire.cli.api import ApiOption, call
from tripwire.cli.output import table, when

silence_app = typer.Typer(
    help="Silence alerts by hand: add, list and expire silences.", no_args_is_help=True
)


@silence_app.command("add")
def silence_add(
    match: list[str] = typer.Option(
        ...,
        "--match",
        help="Which alerts: label=value (globs), label!=value, label=~regex, label!~regex; "
        "repeat for more (all must hold).",
    ),
    for_: str | None = typer.Option(None, "--for", help="How long, e.g. 2h."),
    until_resolved: bool = typer.Option(
        False, "--until-resolved", help="Until every alert it covers has resolved."
    ),
    starts: str | None = typer.Option(None, "--starts", help="When it starts (ISO 8601)."),
    ends: str | None = typer.Option(None, "--ends", help="When it ends (ISO 8601)."),
    comment: str = typer.Option(..., "--comment", help="Why: kept with the silence."),
    actions: str = typer.Option(
        "notifications",
        "--actions",
        help="notifications (default) or all: hold back every action of what it covers.",
    ),
    by: str | None = typer.Option(None, "--by", help="Who (default: your user name)."),
    api: str = ApiOption,
) -> None:
    """Silence the alerts the matchers select: for a while, until a time, or until they
    resolve. Give one of --for, --ends or --until-resolved."""
    body: dict[str, Any] = {
        "match": match,
        "comment": comment,
        "created_by": by or getpass.getuser(),
        "actions": actions,
        "until_resolved": until_resolved,
    }
    for name, value in (("for", for_), ("starts", starts), ("ends", ends)):
        if value is not None:
            body[name] = value
    silence = call(api, "POST", "/api/silences", body=body)
    until = f"until {when(silence['ends'])} UTC" if silence["ends"] else "until resolved"
    typer.echo(f"silence {silence['id']} {silence['state']} {until}")


@silence_app.command("ls")
def silence_ls(
    everything: bool = typer.Option(False, "--all", help="Expired silences too."),
    as_json: bool = typer.Option(False, "--json", help="The whole answer as JSON."),
    api: str = ApiOption,
) -> None:
    """Silences in force or to come, and the maintenance windows from definitions files."""
    found = call(api, "GET", "/api/silences", params={"all": "true"} if everything else None)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    if not found:
        typer.echo("no silences: every alert notifies")
        return
    table(
        ("ID", "KIND", "STATE", "MATCHERS", "STARTS", "ENDS", "BY", "COMMENT"),
        (
            (
                s["id"],
                s["kind"],
                s["state"],
                " ".join(s["matchers"]),
                when(s["starts"]),
                when(s["ends"]) if s["ends"] or s["kind"] == "window" else "until resolved",
                s.get("created_by") or "-",
                s["comment"] or "-",
            )
            for s in found
        ),
    )


@silence_app.command("expire")
def silence_expire(
    silence_id: str = typer.Argument(..., help="The silence's id (from `tripwire silence ls`)."),
    api: str = ApiOption,
) -> None:
    """End a silence now: the alerts it covered notify again."""
    silence = call(api, "DELETE", f"/api/silences/{quote(silence_id, safe='')}")
    typer.echo(f"silence {silence['id']} expired")
