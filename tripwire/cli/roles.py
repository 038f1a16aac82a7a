"""`tripwire up` and `tripwire serve api|worker|actions|sla`: run the engine, whole or one
role per process.

The engine is imported inside each command (tripwire.cli.serving), so that the commands
that only talk to a running engine start fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from tripwire.cli.config import load_settings
from tripwire.cli.definitions import load_definitions

commands = typer.Typer()
serve_app = typer.Typer(help="Run one role of the engine.", no_args_is_help=True)


@commands.command()
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
    processes: int = typer.Option(
        None,
        "--processes",
        envvar="TRIPWIRE_PROCESSES",
        min=1,
        help="Processes to run the roles in (default: one per core, at most 3). 1 runs "
        "everything in this process; 2 runs the worker and the timers beside the API and "
        "the actions; 3 gives the actions their own; more adds workers on PostgreSQL.",
    ),
) -> None:
    """Run everything on embedded defaults (nats-server + SQLite), in a process per core."""
    from tripwire.cli.processes import cores, layout, run_processes
    from tripwire.cli.serving import Role, serve

    settings = load_settings(home, host, port)
    initial = load_definitions(automations, "the engine was not started") if automations else None
    available = cores()
    sqlite = settings.resolved_database_url.startswith("sqlite")
    parts = layout(processes or min(available, 3), sqlite=sqlite)
    if len(parts) == 1:
        serve(settings, frozenset(Role), initial)
    else:
        run_processes(settings, parts, initial, available)


@serve_app.command("api")
def serve_api(
    host: str = typer.Option(None),
    port: int = typer.Option(None),
    home: Path = typer.Option(None, envvar="TRIPWIRE_HOME"),
) -> None:
    """Ingest and query over HTTP and websockets."""
    from tripwire.cli.serving import Role, serve

    serve(load_settings(home, host, port), frozenset({Role.api}))


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
    from tripwire.cli.serving import Role, serve

    roles = {Role.worker, Role.actions} if actions else {Role.worker}
    serve(load_settings(home, host, port), frozenset(roles))


@serve_app.command("actions")
def serve_actions(
    host: str = typer.Option(None),
    port: int = typer.Option(None),
    home: Path = typer.Option(None, envvar="TRIPWIRE_HOME"),
) -> None:
    """Run action requests only (beside `serve worker --no-actions`, so that actions and
    evaluation use a core each); serves health on --port."""
    from tripwire.cli.serving import Role, serve

    serve(load_settings(home, host, port), frozenset({Role.actions}))


@serve_app.command("sla")
def serve_sla(
    host: str = typer.Option(None),
    port: int = typer.Option(None),
    home: Path = typer.Option(None, envvar="TRIPWIRE_HOME"),
) -> None:
    """Run the timers of SLAs and proactive triggers (one leader at a time; start more as
    standbys); serves health on --port."""
    from tripwire.cli.serving import Role, serve

    serve(load_settings(home, host, port), frozenset({Role.sla}))
