"""`tripwire sla ls|status`: SLAs and the state of each key from the command line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import typer

from tripwire.cli_support import ApiOption, call, change_line

sla_app = typer.Typer(help="List SLAs and show the state of each key.", no_args_is_help=True)


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "-"


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())


@sla_app.command("ls")
def sla_ls(api: str = ApiOption) -> None:
    """Every SLA: kind, severity, keys watched, open misses, next due (UTC)."""
    found = call(api, "GET", "/api/slas").json()
    if not found:
        typer.echo("no SLAs yet; add `slas:` to a file and `tripwire apply -f FILE`")
        return
    rows = [("NAME", "KIND", "SEVERITY", "ENABLED", "KEYS", "MISSED", "NEXT DUE")]
    for s in found:
        rows.append(
            (
                s["name"],
                s["kind"],
                s["severity"],
                "yes" if s["enabled"] else "no",
                str(s["keys"]),
                str(s["missed"]),
                _when(s["next_due"]),
            )
        )
    _table(rows)


def _key(window: dict[str, Any]) -> str:
    return ",".join(k for k in window["key"] if k) or "(all)"


@sla_app.command("status")
def sla_status(
    name: str = typer.Argument(..., help="The SLA's name or id."),
    as_json: bool = typer.Option(False, "--json", help="The whole answer as JSON."),
    api: str = ApiOption,
) -> None:
    """One SLA's keys: state (ok, at-risk, missed), deadline, due, last seen, open miss."""
    answer = call(api, "GET", f"/api/slas/{quote(name, safe='')}").json()
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    typer.echo(f"{answer['name']} ({answer['kind']}, {answer['severity']})")
    windows = answer["windows"]
    if not windows:
        typer.echo("no keys watched yet: the first matching event (or timer pass) opens one")
        return
    rows = [("KEY", "STATE", "DEADLINE", "DUE", "LAST SEEN", "MISSED")]
    for w in windows:
        rows.append(
            (
                _key(w),
                w["state"],
                _when(w["deadline"]),
                _when(w["due"]),
                _when(w["last_seen"]),
                _when(w["missed"]),
            )
        )
    _table(rows)


def _change_line(change: dict[str, Any], dry_run: bool) -> str:
    line = change_line(change["kind"], f"SLA {change['name']}", dry_run)
    if change["open_windows"]:
        line += f" (drops the state of {change['open_windows']} key(s))"
    return line


def apply_slas(api: str, slas: list[Any], params: dict[str, str], dry_run: bool) -> None:
    """POST the files' SLAs to /api/slas/apply and print one line per change."""
    body = {"slas": [s.model_dump(mode="json") for s in slas]}
    for change in call(api, "POST", "/api/slas/apply", json=body, params=params).json():
        typer.echo(_change_line(change, dry_run))
