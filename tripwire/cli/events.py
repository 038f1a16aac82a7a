"""`tripwire emit` and `tripwire events ls|tail`: send events, list and follow stored ones."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import orjson
import typer

from events import clock
from tripwire.cli.api import ApiOption, call
from tripwire.cli.durations import since_window
from tripwire.cli.output import fail, when
from tripwire_client.event import RESOURCE_ID, RESOURCE_ROLE, build_event

commands = typer.Typer()
events_app = typer.Typer(help="List and follow stored events.", no_args_is_help=True)


def _pairs(values: list[str], sep: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        left, found, right = value.rpartition(sep) if sep == ":" else value.partition(sep)
        if not found or not left or not right:
            fail(f"{what} {value!r} must look like {'ID:ROLE' if sep == ':' else 'KEY=VALUE'}")
        pairs.append((left, right))
    return pairs


def _related(related: list[str], related_label: list[str]) -> list[dict[str, str]]:
    """--related ID:ROLE resources, with the --related-label ROLE:KEY=VALUE labels added."""
    resources = [
        {RESOURCE_ID: rid, RESOURCE_ROLE: role} for rid, role in _pairs(related, ":", "--related")
    ]
    for item in related_label:
        role, _, pair = item.partition(":")
        (key, value), *_ = _pairs([pair], "=", "--related-label")
        targets = [r for r in resources if r[RESOURCE_ROLE] == role]
        if not targets:
            fail(f"--related-label {item!r}: no --related resource has the role {role!r}")
        for target in targets:
            target[key] = value
    return resources


@commands.command()
def emit(
    event: str = typer.Argument(..., help="Event name, e.g. dbt.model.refreshed."),
    resource: str = typer.Option(
        ..., "--resource", "-r", help="Resource id (prefect.resource.id)."
    ),
    label: list[str] = typer.Option(
        [], "--label", "-l", help="Extra resource label KEY=VALUE (repeatable)."
    ),
    related: list[str] = typer.Option(
        [], "--related", help="Related resource ID:ROLE (repeatable)."
    ),
    related_label: list[str] = typer.Option(
        [],
        "--related-label",
        help="Label of the related resource in ROLE: ROLE:KEY=VALUE (repeatable).",
    ),
    payload: str = typer.Option("{}", "--payload", "-p", help="Payload as a JSON object."),
    api: str = ApiOption,
) -> None:
    """Send one event to a running engine."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        fail(f"--payload is not valid JSON: {exc}")
    if not isinstance(body, dict):
        fail("--payload must be a JSON object, e.g. '{\"rows\": 3}'")
    labels = {RESOURCE_ID: resource, **dict(_pairs(label, "=", "--label"))}
    built = build_event(event, labels, related=_related(related, related_label), payload=body)
    # The event's id is made here, so the engine keeps one copy however often it is sent;
    # the engine checks the event and names the field of any mistake.
    answer = call(api, "POST", "/api/events", body=[built], retries=3)
    typer.echo(answer["accepted"][0])


def _filter(event: str | None, resource: str | None, since: str | None) -> dict[str, Any]:
    flt: dict[str, Any] = {}
    if event:
        flt["event"] = {"prefix": [event]}
    if resource:
        prefix = resource.removesuffix("*")
        flt["resource"] = {"id_prefix": [prefix]} if prefix != resource else {"id": [resource]}
    if since:
        flt["occurred"] = {"since": (clock.now() - since_window(since)).isoformat()}
    return flt


def _line(event: dict[str, Any]) -> str:
    occurred = when(event["occurred"], millis=True)
    return f"{occurred}  {event['event']:<40} {event['resource'][RESOURCE_ID]}  {event['id']}"


def _print(event: dict[str, Any], as_json: bool) -> None:
    typer.echo(orjson.dumps(event).decode() if as_json else _line(event))


@events_app.command("ls")
def events_ls(
    event: str = typer.Option(None, "--event", help="Event name prefix."),
    resource: str = typer.Option(None, "--resource", help="Resource id (or prefix*)."),
    since: str = typer.Option(None, "--since", help="Only events within this window, e.g. 1h."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="One JSON event per line."),
    api: str = ApiOption,
) -> None:
    """List stored events, newest first."""
    query = {"filter": _filter(event, resource, since), "limit": limit}
    data = call(api, "POST", "/api/events/filter", body=query)
    for item in data["events"]:
        _print(item, as_json)
    if not as_json:
        typer.secho(f"{len(data['events'])} of {data['total']} matching events", err=True, dim=True)


@events_app.command("tail")
def events_tail(
    event: str = typer.Option(None, "--event", help="Event name prefix."),
    resource: str = typer.Option(None, "--resource", help="Resource id (or prefix*)."),
    backfill: bool = typer.Option(True, help="Start with recent stored events."),
    as_json: bool = typer.Option(False, "--json", help="One JSON event per line."),
    api: str = ApiOption,
) -> None:
    """Follow events live (Ctrl-C to stop)."""
    import websockets  # only this command speaks websockets

    url = api.replace("http", "ws", 1) + "/api/events/out"
    token = os.environ.get("TRIPWIRE_API_KEY") or os.environ.get("TRIPWIRE_API_AUTH_STRING")

    async def follow() -> None:
        async with websockets.connect(url, subprotocols=[websockets.Subprotocol("prefect")]) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            answer = json.loads(await ws.recv())
            if answer.get("type") != "auth_success":
                fail(f"authentication failed: {answer}")
            flt = _filter(event, resource, "1h" if backfill else None)
            await ws.send(json.dumps({"type": "filter", "filter": flt, "backfill": backfill}))
            async for message in ws:
                _print(json.loads(message)["event"], as_json)

    try:
        asyncio.run(follow())
    except KeyboardInterrupt:
        pass
    except (OSError, websockets.exceptions.WebSocketException) as exc:
        fail(f"lost the engine at {url} ({exc}); is it running (make up)?")
