"""The `tripwire` command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import orjson
import typer
import uvicorn

from events import clock
from events.client import (
    DEFAULT_API_URL,
    TripwireClient,
    build_event,
)
from events.durations import parse_duration
from events.errors import EventsError
from tripwire.cli_actions import actions_app
from tripwire.cli_sla import apply_slas, sla_app
from tripwire.cli_support import VERBS, ApiOption, change_line, fail, redact_url
from tripwire.cli_support import call as _call
from tripwire.cli_support import http_client as _http
from tripwire.cli_webhooks import apply_webhooks, webhooks_app
from tripwire.logs import configure_logging
from tripwire.settings import Settings

if TYPE_CHECKING:
    from sla.loading import Definitions

app = typer.Typer(help="tripwire: an automations engine for data platforms.", no_args_is_help=True)
events_app = typer.Typer(help="List and follow stored events.", no_args_is_help=True)
serve_app = typer.Typer(help="Run one role of the engine.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(serve_app, name="serve")
bench_app = typer.Typer(help="Benchmarks on a throwaway engine.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
automations_app = typer.Typer(
    help="List, inspect, pause, resume and delete automations.", no_args_is_help=True
)
app.add_typer(automations_app, name="automations")
app.add_typer(actions_app, name="actions")
app.add_typer(sla_app, name="sla")
app.add_typer(webhooks_app, name="webhooks")


def _settings(home: Path | None, host: str | None, port: int | None) -> Settings:
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        return Settings(**overrides)
    except ValueError as exc:
        fail(f"invalid settings: {exc}")


def _banner(settings: Settings, engine: Any) -> str:
    api = settings.api_url
    nats = (
        f"{engine.nats_url} (embedded, store {settings.nats_store_dir})"
        if engine.embedded
        else redact_url(engine.nats_url)
    )
    database = settings.resolved_database_url.split("@")[-1]
    applied = ""
    if engine.initial_automations is not None:
        count = len(engine.initial_automations)
        applied = f"  automations  {count} applied at start (tripwire automations ls)\n"
    if engine.initial_slas:
        count = len(engine.initial_slas)
        applied += f"  SLAs         {count} applied at start (tripwire sla ls)\n"
    for follower in engine.followers:
        applied += f"  following    {follower.source.api_url} (state in /api/health)\n"
    export = "" if api == DEFAULT_API_URL else f"  export TRIPWIRE_API_URL={api}\n"
    return (
        f"\ntripwire is up\n"
        f"  API       {api}   (OpenAPI: {api}/docs, health: {api}/api/health)\n"
        f"  NATS      {nats}\n"
        f"  database  {database}\n"
        f"{applied}"
        f"Try, in another terminal:\n"
        f"{export}"
        f"  .venv/bin/tripwire emit my.event --resource my.resource.id "
        f"--payload '{{\"rows\": 3}}'\n"
        f"  .venv/bin/tripwire events ls\n"
        f"  .venv/bin/tripwire events tail\n"
        f"Ctrl-C stops everything.\n"
    )


def _check_port_free(settings: Settings) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((settings.host, settings.port))
        except OSError:
            fail(
                f"port {settings.port} on {settings.host} is already in use; "
                "stop what uses it or pick another with --port / TRIPWIRE_PORT"
            )


def _serve(
    settings: Settings, roles: frozenset[Any], definitions: Definitions | None = None
) -> None:
    from tripwire.app import create_app
    from tripwire.engine import Engine

    configure_logging(settings)
    # FastStream logs every batch at INFO; keep its warnings and errors only.
    logging.getLogger("tripwire.faststream").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # logs every timer run
    _check_port_free(settings)
    engine = Engine(
        settings,
        roles,
        automations=definitions.automations if definitions else None,
        connections=definitions.connections if definitions else None,
        sources=definitions.sources if definitions else None,
        webhooks=definitions.webhooks if definitions else None,
        slas=definitions.slas if definitions else None,
    )
    fastapi_app = create_app(engine)
    config = uvicorn.Config(
        fastapi_app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        ws_ping_interval=20,
        ws_ping_timeout=20,
    )
    server = _AnnouncingServer(config, lambda: typer.echo(_banner(settings, engine)))
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(server.serve())
    except EventsError as exc:
        fail(str(exc))
    except (KeyboardInterrupt, SystemExit):
        pass
    if not server.started:
        fail(f"the engine did not start on port {settings.port}; see the messages above")


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, telling the user where to look once it listens."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.announce()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    # uvloop when installed (uvicorn[standard] brings it): a faster event loop for ingest.
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@app.command()
def up(
    host: str = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: int = typer.Option(None, help="API port (default 4280)."),
    home: Path = typer.Option(
        None, envvar="TRIPWIRE_HOME", help="Data folder (default ./.tripwire)."
    ),
    automations: list[Path] = typer.Option(
        [],
        "--automations",
        help="Apply the automations in this file or folder at start (repeatable).",
    ),
) -> None:
    """Run everything in one process on embedded defaults (nats-server + SQLite)."""
    from tripwire.engine import Role

    settings = _settings(home, host, port)
    initial = _definitions(automations, "the engine was not started") if automations else None
    _serve(settings, frozenset(Role), initial)


@serve_app.command("api")
def serve_api(
    host: str = typer.Option(None),
    port: int = typer.Option(None),
    home: Path = typer.Option(None, envvar="TRIPWIRE_HOME"),
) -> None:
    """Ingest and query over HTTP and websockets."""
    from tripwire.engine import Role

    _serve(_settings(home, host, port), frozenset({Role.api}))


@serve_app.command("worker")
def serve_worker(
    host: str = typer.Option(None),
    port: int = typer.Option(None),
    home: Path = typer.Option(None, envvar="TRIPWIRE_HOME"),
    actions: bool = typer.Option(
        True, "--actions/--no-actions", help="Also run actions (else `serve actions` does)."
    ),
) -> None:
    """Store and evaluate events, and run actions; serves health on --port."""
    from tripwire.engine import Role

    roles = {Role.worker, Role.actions} if actions else {Role.worker}
    _serve(_settings(home, host, port), frozenset(roles))


@serve_app.command("actions")
def serve_actions(
    host: str = typer.Option(None),
    port: int = typer.Option(None),
    home: Path = typer.Option(None, envvar="TRIPWIRE_HOME"),
) -> None:
    """Run action requests only (beside `serve worker --no-actions`, so that actions and
    evaluation use a core each); serves health on --port."""
    from tripwire.engine import Role

    _serve(_settings(home, host, port), frozenset({Role.actions}))


@serve_app.command("sla")
def serve_sla(
    host: str = typer.Option(None),
    port: int = typer.Option(None),
    home: Path = typer.Option(None, envvar="TRIPWIRE_HOME"),
) -> None:
    """Run the timers of SLAs and proactive triggers (one leader at a time; start more as
    standbys); serves health on --port."""
    from tripwire.engine import Role

    _serve(_settings(home, host, port), frozenset({Role.sla}))


def _pairs(values: list[str], sep: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        left, found, right = value.rpartition(sep) if sep == ":" else value.partition(sep)
        if not found or not left or not right:
            fail(f"{what} {value!r} must look like {'ID:ROLE' if sep == ':' else 'KEY=VALUE'}")
        pairs.append((left, right))
    return pairs


@app.command()
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
    labels = {"prefect.resource.id": resource, **dict(_pairs(label, "=", "--label"))}
    rel = [
        {"prefect.resource.id": rid, "prefect.resource.role": role}
        for rid, role in _pairs(related, ":", "--related")
    ]
    for item in related_label:
        role, _, pair = item.partition(":")
        (key, value), *_ = _pairs([pair], "=", "--related-label")
        targets = [r for r in rel if r["prefect.resource.role"] == role]
        if not targets:
            fail(f"--related-label {item!r}: no --related resource has the role {role!r}")
        for target in targets:
            target[key] = value
    try:
        built = build_event(event, labels, related=rel, payload=body)
    except ValueError as exc:
        fail(str(exc))
    try:
        with TripwireClient(api, retries=3) as client:
            ids = client.emit(built)
    except EventsError as exc:
        fail(f"{exc}. Is the engine running (make up)?")
    typer.echo(str(ids[0]))


def _filter(event: str | None, resource: str | None, since: str | None) -> dict[str, Any]:
    flt: dict[str, Any] = {}
    if event:
        flt["event"] = {"prefix": [event]}
    if resource:
        prefix = resource.removesuffix("*")
        flt["resource"] = {"id_prefix": [prefix]} if prefix != resource else {"id": [resource]}
    if since:
        flt["occurred"] = {"since": (clock.now() - _since(since)).isoformat()}
    return flt


def _duration(value: str) -> timedelta | None:
    """`value` as a duration (90, 10m, 2h, 7d), or None when it is not one."""
    parsed = parse_duration(value)
    return parsed if isinstance(parsed, timedelta) else None


def _since(value: str) -> timedelta:
    """A --since duration, or the command ends saying how to write one."""
    window = _duration(value)
    if window is None:
        fail(f"--since {value!r} is not a duration; use e.g. 30m, 1h, 7d")
    return window


def _line(event: dict[str, Any]) -> str:
    occurred = event["occurred"].replace("T", " ")[:23]
    resource = event["resource"]["prefect.resource.id"]
    return f"{occurred}  {event['event']:<40} {resource}  {event['id']}"


def _path(ref: str) -> str:
    """The URL path of one automation (names may hold spaces or slashes)."""
    return f"/api/automations/{quote(ref, safe='')}"


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
    body = {"filter": _filter(event, resource, since), "limit": limit}
    response = _call(api, "POST", "/api/events/filter", json=body)
    data = response.json()
    for item in data["events"]:
        typer.echo(orjson.dumps(item).decode() if as_json else _line(item))
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
    import websockets

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
                item = json.loads(message)["event"]
                typer.echo(orjson.dumps(item).decode() if as_json else _line(item))

    try:
        asyncio.run(follow())
    except KeyboardInterrupt:
        pass
    except (OSError, websockets.exceptions.WebSocketException) as exc:
        fail(f"lost the engine at {url} ({exc}); is it running (make up)?")


@bench_app.command("ingest")
def bench_ingest(
    seconds: float = typer.Option(60.0, help="Load duration in seconds."),
    batch: int = typer.Option(500, min=1, help="Events per POST."),
    concurrency: int = typer.Option(4, min=1, help="POSTs in flight."),
    port: int = typer.Option(None, help="Engine API port (default a free one)."),
    rate: float = typer.Option(
        None, help="Offered events/s (paced); default: as fast as accepted."
    ),
) -> None:
    """Start an engine, POST events for a while, report accepted/stored rates and latency."""
    from bench.ingest import main as ingest

    argv = ["--seconds", str(seconds), "--batch", str(batch), "--concurrency", str(concurrency)]
    argv += ["--port", str(port)] if port else []
    argv += ["--rate", str(rate)] if rate else []
    raise typer.Exit(ingest(argv))


@bench_app.command("triggers")
def bench_triggers(
    seconds: float = typer.Option(30.0, help="Duration of each phase in seconds."),
    rate: float = typer.Option(1000.0, help="Events/s offered in the latency phase."),
    automations: int = typer.Option(1000, min=1, help="Automations in all."),
    candidates: int = typer.Option(100, min=1, help="Automations that expect the events sent."),
    batch: int = typer.Option(500, min=1, help="Events per POST in the throughput phase."),
    port: int = typer.Option(None, help="Engine API port (default a free one)."),
    split: bool = typer.Option(
        False, help="Run serve api, serve worker and serve sla as separate processes."
    ),
) -> None:
    """Start an engine with automations; report events evaluated and stored per second, and
    the latency from an accepted event to its action request at a fixed rate."""
    from bench.triggers import main as triggers

    argv = ["--seconds", str(seconds), "--rate", str(rate), "--batch", str(batch)]
    argv += ["--automations", str(automations), "--candidates", str(candidates)]
    argv += ["--port", str(port)] if port else []
    argv += ["--split"] if split else []
    raise typer.Exit(triggers(argv))


@bench_app.command("worker")
def bench_worker(
    batches: str = typer.Option("25,130,2000", help="Batch sizes, comma-separated."),
    jitter: float = typer.Option(0.4, min=0.0, max=0.99, help="± share of each batch size."),
    events: int = typer.Option(10_000, min=1, help="Timed events per batch size."),
    prefill: int = typer.Option(20_000, min=0, help="Events stored before timing."),
) -> None:
    """Time the worker's batch handler alone (store, evaluate, commit, publish) in this
    process; report wall and CPU time per event for each batch size."""
    from bench.worker import main as worker

    argv = ["--batches", batches, "--jitter", str(jitter)]
    argv += ["--events", str(events), "--prefill", str(prefill)]
    raise typer.Exit(worker(argv))


@bench_app.command("actions")
def bench_actions(
    count: int = typer.Option(20_000, min=1, help="Requests in the throughput phase."),
    rate: float = typer.Option(500.0, help="Requests/s offered in the latency phase."),
    seconds: float = typer.Option(20.0, help="Duration of the latency phase in seconds."),
    port: int = typer.Option(None, help="Engine API port (default a free one)."),
) -> None:
    """Start an engine and a webhook receiver; report call-webhook actions run per second,
    and the latency from an action request to its HTTP call at a fixed rate."""
    from bench.actions import main as actions

    argv = ["--count", str(count), "--rate", str(rate), "--seconds", str(seconds)]
    argv += ["--port", str(port)] if port else []
    raise typer.Exit(actions(argv))


@bench_app.command("sla")
def bench_sla(
    keys: int = typer.Option(100_000, min=1, help="Open duration-SLA windows (keys)."),
    same_second: int = typer.Option(1000, min=1, help="Deadlines falling in the same second."),
    rate: float = typer.Option(1000.0, help="Background events/s offered around them."),
    lead: float = typer.Option(15.0, help="Seconds from the load to the deadline second."),
    batch: int = typer.Option(500, min=1, help="Events per POST."),
    port: int = typer.Option(None, help="Engine API port (default a free one)."),
) -> None:
    """Start an engine with a duration SLA and many open keys; report its memory, the timer
    lag of deadlines in one second under load, and the time to reload after a restart."""
    from bench.sla import main as sla

    argv = ["--keys", str(keys), "--same-second", str(same_second), "--rate", str(rate)]
    argv += ["--lead", str(lead), "--batch", str(batch)]
    argv += ["--port", str(port)] if port else []
    raise typer.Exit(sla(argv))


@bench_app.command("scale")
def bench_scale(
    events: int = typer.Option(50_000, min=1, help="Events POSTed for each worker count."),
    batch: int = typer.Option(500, min=1, help="Events per POST."),
    automations: int = typer.Option(1000, min=1, help="Automations in all."),
    candidates: int = typer.Option(100, min=1, help="Automations that expect the events sent."),
    postgres: str = typer.Option(
        None, help="Admin DSN (default TRIPWIRE_BENCH_POSTGRES_URL, else local `test`)."
    ),
) -> None:
    """Run the triggers workload with 1 and then 2 `serve worker` processes on PostgreSQL;
    report events evaluated and stored per second for each, and their ratio."""
    from bench.scale import main as scale

    argv = ["--events", str(events), "--batch", str(batch)]
    argv += ["--automations", str(automations), "--candidates", str(candidates)]
    argv += ["--postgres", postgres] if postgres else []
    raise typer.Exit(scale(argv))


def _summary(definitions: Definitions) -> str:
    what = _plural(len(definitions.automations), "automation")
    if definitions.connections:
        what += f", {_plural(len(definitions.connections), 'connection')}"
    if definitions.slas:
        what += f", {_plural(len(definitions.slas), 'SLA')}"
    if definitions.sources:
        what += f", {_plural(len(definitions.sources), 'source')}"
    if definitions.webhooks:
        what += f", {_plural(len(definitions.webhooks), 'webhook')}"
    return f"{what} in {len(definitions.files)} file(s)"


def _definitions(files: list[Path], consequence: str) -> Definitions:
    """Everything the files define; every error printed (file:line: field) and exit 1."""
    from sla.loading import load_paths

    missing = [str(f) for f in files if not f.exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}")
    definitions = load_paths(files)
    for error in definitions.errors:
        typer.echo(str(error), err=True)
    if definitions.errors:
        then = f"; {consequence}" if consequence else ""
        fail(f"{len(definitions.errors)} problem(s); {_summary(definitions)} loaded{then}")
    return definitions


@app.command()
def validate(
    files: list[Path] = typer.Option(..., "--file", "-f", help="A file or folder (repeatable)."),
) -> None:
    """Check automation (connection and SLA) files; report every error with file, line and
    field."""
    definitions = _definitions(files, "")
    typer.echo(f"ok: {_summary(definitions)}")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _change_line(change: dict[str, Any], dry_run: bool) -> str:
    kind, name = change["kind"], change["name"]
    if kind == "unchanged":
        return f"unchanged {name}"
    verb = f"would {VERBS[kind]}" if dry_run else kind
    resets, windows = len(change["reset_triggers"]), change["open_windows"]
    if kind == "updated":
        if not resets:
            return f"{verb} {name} (trigger state kept)"
        return (
            f"{verb} {name} (resets state of {_plural(resets, 'trigger')}, "
            f"{_plural(windows, 'open window')})"
        )
    if kind == "deleted" and windows:
        return f"{verb} {name} (drops {_plural(windows, 'open window')})"
    return f"{verb} {name}"


@app.command()
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
    definitions = _definitions(files, "nothing was applied")
    automations, connections = definitions.automations, definitions.connections
    webhooks = definitions.webhooks
    if definitions.sources:
        typer.echo(
            "note: sources are not applied to a running engine: `tripwire up --automations` "
            "follows them from the start, `serve api` with TRIPWIRE_PREFECT_FOLLOW=true",
            err=True,
        )
    if prune and not (automations or connections or webhooks or definitions.slas):
        fail(
            f"no automations in {', '.join(map(str, files))}; --prune would delete every "
            "automation, so nothing was applied"
        )
    params = {"prune": str(prune).lower(), "dry_run": str(dry_run).lower()}
    if connections:  # first, so the automations' actions find them
        body = {"connections": [c.model_dump(mode="json") for c in connections]}
        found = _call(api, "POST", "/api/connections/apply", json=body, params=params).json()
        for change in found:
            typer.echo(change_line(change["change"], f"connection {change['name']}", dry_run))
    if webhooks:
        apply_webhooks(api, webhooks, params, dry_run)
    if definitions.slas:
        apply_slas(api, definitions.slas, params, dry_run)
    # A file of connections, webhooks or SLAs only leaves the automations alone.
    if automations or not (connections or webhooks or definitions.slas):
        body = {"automations": [a.model_dump(mode="json", by_alias=True) for a in automations]}
        changes = _call(api, "POST", "/api/automations/apply", json=body, params=params).json()
        for change in changes:
            typer.echo(_change_line(change, dry_run))
    if dry_run:
        typer.echo("dry run: nothing was changed")


def _trigger_kind(trigger: dict[str, Any]) -> str:
    kind = str(trigger.get("type", "?"))
    if kind == "event" and trigger.get("posture") == "Proactive":
        return "event, proactive"
    return kind


def _expected(trigger: dict[str, Any]) -> list[str]:
    """Every event name (glob) the trigger's event triggers expect."""
    if trigger.get("type") == "event":
        return list(trigger.get("expect") or [])
    return [name for child in trigger.get("triggers", []) for name in _expected(child)]


@automations_app.command("ls")
def automations_ls(api: str = ApiOption) -> None:
    """List automations: name, state, trigger type, number of actions, id."""
    found = _call(api, "GET", "/api/automations/").json()
    if not found:
        typer.echo("no automations yet; add some with `tripwire apply -f FILE`")
        return
    rows = [("NAME", "STATE", "TRIGGER", "ACTIONS", "ID")]
    for item in found:
        actions = sum(
            len(item.get(key) or [])
            for key in ("actions", "actions_on_trigger", "actions_on_resolve")
        )
        state = "enabled" if item["enabled"] else "paused"
        rows.append((item["name"], state, _trigger_kind(item["trigger"]), str(actions), item["id"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]))


@automations_app.command("inspect")
def automations_inspect(
    name: str = typer.Argument(..., help="The automation's name or id."),
    output: str = typer.Option("yaml", "--output", "-o", help="yaml or json."),
    api: str = ApiOption,
) -> None:
    """Print an automation's definition in Prefect's shape (`tripwire apply -f` takes it back)."""
    if output not in ("yaml", "json"):
        fail(f"--output {output!r} is not supported; use yaml or json")
    definition = _call(api, "GET", _path(name)).json()
    for stamp in ("created", "updated"):  # set by tripwire, not part of a definition
        definition.pop(stamp, None)
    if output == "json":
        typer.echo(json.dumps(definition, indent=2))
        return
    import yaml

    typer.echo(yaml.safe_dump(definition, sort_keys=False, allow_unicode=True), nl=False)


@automations_app.command("pause")
def automations_pause(
    name: str = typer.Argument(..., help="The automation's name or id."), api: str = ApiOption
) -> None:
    """Stop an automation from firing; its trigger state is kept."""
    _call(api, "PATCH", _path(name), json={"enabled": False})
    typer.echo(f"paused {name}")


@automations_app.command("resume")
def automations_resume(
    name: str = typer.Argument(..., help="The automation's name or id."), api: str = ApiOption
) -> None:
    """Let a paused automation fire again."""
    _call(api, "PATCH", _path(name), json={"enabled": True})
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
    _call(api, "DELETE", _path(name))
    typer.echo(f"deleted {name}")


def _decision_line(decision: dict[str, Any]) -> str:
    decided = (decision["decided"] or "not recorded, now").replace("T", " ")[:19]
    event = f"{decision['event']} {decision['event_id']}" if decision["event_id"] else "(no event)"
    return f"{decided}  {decision['outcome']:<9}  {event}  {decision['reason']}"


@app.command()
def explain(
    name: str = typer.Argument(..., help="The automation's name or id."),
    event: str = typer.Option(None, "--event", help="Only decisions about this event id."),
    last: int = typer.Option(20, "--last", min=1, max=1000, help="The newest this many."),
    api: str = ApiOption,
) -> None:
    """Why an automation fired or did not: its recent decisions, oldest first."""
    automation = _call(api, "GET", _path(name)).json()
    params: dict[str, Any] = {"last": last}
    if event:
        params["event_id"] = event
    decisions = _call(api, "GET", _path(name) + "/decisions", params=params).json()
    for decision in decisions:
        typer.echo(_decision_line(decision))
    if decisions:
        return
    about = f" about event {event}" if event else ""
    typer.echo(f"no decisions recorded for {automation['name']}{about}. Things to check:")
    expected = _expected(automation["trigger"])
    names = ", ".join(expected) if expected else "any event (expect is empty)"
    typer.echo(f"  - does the event's name match the trigger's expect: {names}?")
    typer.echo("  - do its resource and related resources match `match` / `match_related`?")
    if event:
        found = _call_status(api, f"/api/events/{quote(event, safe='')}")
        if found == 404:
            typer.echo(f"  - event {event} is not stored (yet): check `tripwire events ls`")
    if not automation["enabled"]:
        typer.echo(
            f"  - {automation['name']} is paused: `tripwire automations resume "
            f"{automation['name']}`"
        )
    typer.echo(
        "  - is a worker running (`tripwire up` or `tripwire serve worker`)? "
        "Only workers evaluate events."
    )


def _call_status(api: str | None, path: str) -> int:
    """The status of a GET, or 0 when the engine cannot be reached."""
    try:
        with _http(api) as http:
            return http.get(path).status_code
    except httpx.TransportError:
        return 0


@app.command("test")
def replay_automations(
    files: list[Path] = typer.Option(..., "--file", "-f", help="Automations (repeatable)."),
    events_file: Path = typer.Option(
        None, "--events", help="Recorded events: JSON lines, or a JSON array."
    ),
    from_store: bool = typer.Option(
        False, "--from-store", help="Replay this engine's stored events instead."
    ),
    since: str = typer.Option("24h", help="With --from-store: how far back, e.g. 24h."),
    until: str = typer.Option(
        None,
        help="Run the clock on to this ISO time, or this long after the last event (e.g. 2h), "
        "so proactive windows ending by then fire.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
    home: Path = typer.Option(None, envvar="TRIPWIRE_HOME"),
) -> None:
    """Replay recorded events through automations: what would have fired, when and why."""

    from triggers.replay import replay
    from tripwire.replaying import RecordedEventsError, events_from_store, read_events_file, render

    if (events_file is None) == (not from_store):
        fail("give recorded events with --events FILE, or --from-store (not both)")
    definitions = _definitions(files, "nothing was replayed")
    if events_file is not None:
        if not events_file.exists():
            fail(f"no such file: {events_file}")
        try:
            events = read_events_file(events_file)
        except RecordedEventsError as exc:
            fail(str(exc))
    else:
        settings = _settings(home, None, None)
        events = asyncio.run(events_from_store(settings.resolved_database_url, _since(since)))
    end = None
    if until is not None:
        span = _duration(until)
        if span is not None:
            last = max((e.occurred for e in events), default=clock.now())
            end = last + span
        else:
            try:
                end = datetime.fromisoformat(until.replace("Z", "+00:00"))
            except ValueError:
                fail(f"--until {until!r} is neither a time (ISO 8601) nor a duration like 2h")
    report = asyncio.run(replay(definitions.automations, events, until=end))
    if as_json:
        body = {
            "events": report.events,
            "firings": [f.as_json() for f in report.firings],
            "stopped": report.stopped,
        }
        typer.echo(json.dumps(body, indent=2))
    else:
        typer.echo(render(report))


@app.command()
def config(home: Path = typer.Option(None, envvar="TRIPWIRE_HOME")) -> None:
    """Print the effective settings (secrets masked)."""
    settings = _settings(home, None, None)
    for name, value in settings.model_dump(mode="json").items():
        if name in ("api_key", "api_auth_string") and value:
            value = "********"
        elif isinstance(value, str):
            value = redact_url(value)
        typer.echo(f"{name:<24} {value}")


@app.command()
def migrate(home: Path = typer.Option(None, envvar="TRIPWIRE_HOME")) -> None:
    """Create or upgrade the database schema."""
    from tripwire.database import create_engine
    from tripwire.database import migrate as run_migrations

    settings = _settings(home, None, None)

    async def run() -> None:
        # Under SQLite the action ledger has a file of its own (see Settings).
        for url in dict.fromkeys([settings.resolved_database_url, settings.ledger_database_url]):
            engine = create_engine(url)
            try:
                await run_migrations(engine)
            finally:
                await engine.dispose()

    asyncio.run(run())
    typer.echo("database is at the latest schema")


def main() -> None:
    """Entry point of the `tripwire` script."""
    app(prog_name="tripwire")


if __name__ == "__main__":
    main()
