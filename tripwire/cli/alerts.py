"""`tripwire alerts ls|show|ack|resolve`: alerts from the command line."""

from __future__ import annotations

import getpass
import json
from typing import Any
from urllib.parse import quote

import typer

from tripwire.cli.api import ApiOption, call
from tripwire.cli.output import plural, table, when

alerts_app = typer.Typer(
    help="List alerts, show one, acknowledge or resolve it.", no_args_is_help=True
)

STATES = ("firing", "acknowledged", "resolved", "silenced", "inhibited")


def _key(alert: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(alert["key"].items())) or "-"


def _path(alert_id: str, action: str = "") -> str:
    return f"/api/alerts/{quote(alert_id, safe='')}{action}"


@alerts_app.command("ls")
def alerts_ls(
    state: str | None = typer.Option(
        None,
        "--state",
        help="Only alerts in this state: firing, acknowledged, resolved, or silenced or "
        "inhibited (open and muted now).",
    ),
    name: str | None = typer.Option(None, "--name", help="Only this automation's or SLA's."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help="The whole answer as JSON."),
    api: str = ApiOption,
) -> None:
    """Alerts, newest first: id, state, severity, source, key, count, last fired (UTC)."""
    if state is not None and state not in STATES:
        raise typer.BadParameter(f"choose one of {', '.join(STATES)}", param_hint="--state")
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    if name:
        params["name"] = name
    found = call(api, "GET", "/api/alerts", params=params)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    if not found:
        typer.echo("no alerts" + (f" {state}" if state else "") + ": all quiet")
        return
    table(
        ("ID", "STATE", "SEVERITY", "NAME", "KEY", "COUNT", "LAST FIRED", "SUMMARY"),
        (
            (
                a["id"],
                a["state"],
                a["severity"],
                a["name"],
                _key(a),
                str(a["count"]),
                when(a["last_fired"]),
                a["summary"],
            )
            for a in found
        ),
    )


@alerts_app.command("show")
def alerts_show(
    alert_id: str = typer.Argument(..., help="The alert's id (from `tripwire alerts ls`)."),
    as_json: bool = typer.Option(False, "--json", help="The whole answer as JSON."),
    api: str = ApiOption,
) -> None:
    """One alert: its state and labels, the firings that fed it and its notification groups."""
    alert = call(api, "GET", _path(alert_id))
    if as_json:
        typer.echo(json.dumps(alert, indent=2))
        return
    typer.echo(f"{alert['name']} ({alert['kind']}, {alert['severity']}): {alert['state']}")
    typer.echo(f"  {alert['summary']}")
    typer.echo(f"  key          {_key(alert)}")
    typer.echo(f"  first fired  {when(alert['first_fired'])}")
    typer.echo(f"  last fired   {when(alert['last_fired'])} ({plural(alert['count'], 'firing')})")
    if alert["acknowledged"]:
        until = f" until {when(alert['acknowledged_until'])}" if alert["acknowledged_until"] else ""
        by = f" by {alert['acknowledged_by']}" if alert["acknowledged_by"] else ""
        typer.echo(f"  acknowledged {when(alert['acknowledged'])}{by}{until}")
    if alert["resolved"]:
        typer.echo(f"  resolved     {when(alert['resolved'])} ({alert['resolved_by']})")
    if alert["comment"]:
        typer.echo(f"  comment      {alert['comment']}")
    if alert["downstream"]:
        typer.echo(f"  downstream   {', '.join(alert['downstream'])}")
    typer.echo("labels:")
    for name, value in sorted(alert["labels"].items()):
        shown = ", ".join(value) if isinstance(value, list) else value
        typer.echo(f"  {name} = {shown}")
    if alert["groups"]:
        typer.echo("notification groups:")
        table(
            ("GROUP", "ACTION", "STATUS", "SENT", "NEXT"),
            (
                (g["group"][:12], g["action"], g["status"] or "-", when(g["sent"]), when(g["next"]))
                for g in alert["groups"]
            ),
        )
    typer.echo("firings:")
    table(
        ("FIRED", "STATE", "FIRING", "EVENT"),
        ((when(f["fired"]), f["state"], f["firing_id"], f["event_id"]) for f in alert["firings"]),
    )


def _who(by: str | None) -> str:
    return by if by is not None else getpass.getuser()


@alerts_app.command("ack")
def alerts_ack(
    alert_id: str = typer.Argument(..., help="The alert's id."),
    for_: str | None = typer.Option(
        None, "--for", help="For this long (e.g. 2h), then it fires again if still open."
    ),
    comment: str | None = typer.Option(None, "--comment", help="What is being done."),
    by: str | None = typer.Option(None, "--by", help="Who is on it (default: your user name)."),
    api: str = ApiOption,
) -> None:
    """Acknowledge an alert: its groups stop repeating it; PagerDuty hears `acknowledge`."""
    body: dict[str, Any] = {"by": _who(by), "comment": comment}
    if for_ is not None:
        body["for"] = for_
    alert = call(api, "POST", _path(alert_id, "/acknowledge"), body=body)
    until = f" until {when(alert['acknowledged_until'])} UTC" if alert["acknowledged_until"] else ""
    typer.echo(f"acknowledged {alert['name']} ({_key(alert)}){until}")


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: str = typer.Argument(..., help="The alert's id."),
    comment: str | None = typer.Option(None, "--comment", help="Why."),
    by: str | None = typer.Option(None, "--by", help="Who (default: your user name)."),
    api: str = ApiOption,
) -> None:
    """Resolve an alert by hand: its groups send their resolved notices."""
    alert = call(
        api, "POST", _path(alert_id, "/resolve"), body={"by": _who(by), "comment": comment}
    )
    typer.echo(f"resolved {alert['name']} ({_key(alert)})")
