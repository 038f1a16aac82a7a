"""`tripwire sla ls|status`: SLAs and the state of each key from the command line."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import typer

from tripwire.cli.api import ApiOption, call
from tripwire.cli.output import table, when

sla_app = typer.Typer(help="List SLAs and show the state of each key.", no_args_is_help=True)


@sla_app.command("ls")
def sla_ls(api: str = ApiOption) -> None:
    """Every SLA: kind, severity, keys watched, open misses, next due (UTC)."""
    found = call(api, "GET", "/api/slas")
    if not found:
        typer.echo("no SLAs yet; add `slas:` to a file and `tripwire apply -f FILE`")
        return
    table(
        ("NAME", "KIND", "SEVERITY", "ENABLED", "KEYS", "MISSED", "NEXT DUE"),
        (
            (
                s["name"],
                s["kind"],
                s["severity"],
                "yes" if s["enabled"] else "no",
                str(s["keys"]),
                str(s["missed"]),
                when(s["next_due"]),
            )
            for s in found
        ),
    )


def _key(window: dict[str, Any]) -> str:
    return ",".join(k for k in window["key"] if k) or "(all)"


@sla_app.command("status")
def sla_status(
    name: str = typer.Argument(..., help="The SLA's name or id."),
    as_json: bool = typer.Option(False, "--json", help="The whole answer as JSON."),
    api: str = ApiOption,
) -> None:
    """One SLA's keys: state (ok, at-risk, missed), deadline, due, last seen, open miss."""
    answer = call(api, "GET", f"/api/slas/{quote(name, safe='')}")
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    typer.echo(f"{answer['name']} ({answer['kind']}, {answer['severity']})")
    windows = answer["windows"]
    if not windows:
        typer.echo("no keys watched yet: the first matching event (or timer pass) opens one")
        return
    table(
        ("KEY", "STATE", "DEADLINE", "DUE", "LAST SEEN", "MISSED"),
        (
            (
                _key(w),
                w["state"],
                when(w["deadline"]),
                when(w["due"]),
                when(w["last_seen"]),
                when(w["missed"]),
            )
            for w in windows
        ),
    )
