"""`tripwire actions ls|inspect|retry`: the action ledger from the command line."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import typer

from tripwire.cli.api import ApiOption, call
from tripwire.cli.output import table, when

actions_app = typer.Typer(
    help="List action requests, inspect one, re-run a failed one.", no_args_is_help=True
)


def _outcome(entry: dict[str, Any]) -> str:
    text = entry.get("result") if entry["status"] == "succeeded" else entry.get("last_error")
    return (text or "").replace("\n", " ")[:100]


@actions_app.command("ls")
def actions_ls(
    failed: bool = typer.Option(False, "--failed", help="Only failed (dead-lettered) requests."),
    status: str = typer.Option(None, "--status", help="Only this status."),
    automation: str = typer.Option(None, "--automation", "-a", help="Name or id."),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many, newest first."),
    api: str = ApiOption,
) -> None:
    """Action requests, newest first: when, automation, type, status, attempts, outcome."""
    params: dict[str, Any] = {"limit": limit}
    if failed or status:
        params["status"] = "failed" if failed else status
    if automation:
        params["automation"] = automation
    entries = call(api, "GET", "/api/actions", params=params)
    if not entries:
        typer.echo("no failed actions" if failed else "no actions yet")
        return
    table(
        ("CREATED", "AUTOMATION", "TYPE", "STATUS", "TRIES", "ID", "OUTCOME"),
        (
            (
                when(e["created"]),
                e["automation_name"],
                e["action_type"],
                e["status"],
                str(e["attempts"]),
                e["id"],
                _outcome(e),
            )
            for e in entries
        ),
    )
    if failed:
        typer.echo("re-run one with `tripwire actions retry ID`")


@actions_app.command("inspect")
def actions_inspect(
    action_id: str = typer.Argument(..., help="The action request's id."), api: str = ApiOption
) -> None:
    """The ledger entry and the request (action, triggering event) as JSON."""
    entry = call(api, "GET", f"/api/actions/{quote(action_id, safe='')}")
    typer.echo(json.dumps(entry, indent=2))


@actions_app.command("retry")
def actions_retry(
    action_id: str = typer.Argument(..., help="The failed request's id."), api: str = ApiOption
) -> None:
    """Run a failed action again, with a fresh set of attempts."""
    answer = call(api, "POST", f"/api/actions/{quote(action_id, safe='')}/retry")
    typer.echo(f"re-running {action_id} (round {answer['round']}); see `tripwire actions ls`")
