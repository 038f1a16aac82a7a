"""Running the engine in this process for `tripwire up` and `tripwire serve`: uvicorn with
the engine's app, a banner once it listens, one-line errors when it cannot start.

Imported by those commands only: it brings the whole engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import typer
import uvicorn

from events.checkpoints import CheckpointProtocol
from events.errors import EventsError
from tripwire.app import create_app
from tripwire.cli.output import fail, redact_url
from tripwire.engine import Engine, Role
from tripwire.logs import configure_logging
from tripwire.settings import Settings
from tripwire_client.config import DEFAULT_API_URL

if TYPE_CHECKING:
    from events.sources import PrefectSource
    from tripwire.definitions import Definitions

__all__ = [
    "Role",
    "banner",
    "check_port_free",
    "nats_line",
    "quiet_libraries",
    "role_names",
    "serve",
]


def serve(
    settings: Settings,
    roles: frozenset[Role],
    definitions: Definitions | None = None,
    *,
    sources: Sequence[PrefectSource] | None = None,
    announce: Callable[[], None] | None = None,
) -> None:
    """Run these roles of the engine until Ctrl-C; `definitions` are applied at start.

    `announce` replaces the banner (a process of a several-process `tripwire up`, whose
    first process prints it); `sources` are the Prefect servers to follow when the
    definitions were applied there."""
    configure_logging(settings)
    quiet_libraries()
    check_port_free(settings)
    engine = Engine(settings, roles, definitions=definitions, sources=sources)
    config = uvicorn.Config(
        create_app(engine),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        ws_ping_interval=20,
        ws_ping_timeout=20,
        ws=CheckpointProtocol,  # a pong on /api/events/in means the events are on JetStream
        # Compressing each small event frame cost Prefect's client as much CPU as sending
        # it, and the engine the inflating; events are a few hundred bytes.
        ws_per_message_deflate=False,
    )
    if announce is None:
        processes = f"1: {role_names(roles)} (pid {os.getpid()}; --processes N splits them)"
        announce = lambda: typer.echo(  # noqa: E731
            banner(
                settings,
                nats_line(settings, engine.nats_url, embedded=engine.embedded is not None),
                definitions,
                [f.source.api_url for f in engine.followers],
                processes,
            )
        )
    server = _AnnouncingServer(config, announce)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(server.serve())
    except EventsError as exc:
        fail(str(exc))
    except (KeyboardInterrupt, SystemExit):
        pass
    if not server.started:
        fail(f"the engine did not start on port {settings.port}; see the messages above")


def quiet_libraries() -> None:
    """Keep the libraries' warnings and errors only."""
    # FastStream logs every batch at INFO.
    logging.getLogger("tripwire.faststream").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # logs every timer run


def role_names(roles: Iterable[Role]) -> str:
    """`api, worker, actions, sla`: in the order a request travels."""
    return ", ".join(r.value for r in Role if r in set(roles))


def check_port_free(settings: Settings) -> None:
    """End the command with a clear message when the API port is taken."""
    with socket.socket() as probe:
        try:
            probe.bind((settings.host, settings.port))
        except OSError:
            fail(
                f"port {settings.port} on {settings.host} is already in use; "
                "stop what uses it or pick another with --port / TRIPWIRE_PORT"
            )


def nats_line(settings: Settings, url: str, *, embedded: bool) -> str:
    """The banner's NATS line: where it is, and its store when `up` runs it."""
    if embedded:
        return f"{url} (embedded, store {settings.nats_store_dir})"
    return redact_url(url)


def banner(
    settings: Settings,
    nats: str,
    definitions: Definitions | None,
    following: Sequence[str],
    processes: str,
) -> str:
    """What `tripwire up` prints once it serves: where to look and what to try."""
    api = settings.api_url
    database = settings.resolved_database_url.split("@")[-1]
    applied = ""
    if definitions is not None:
        count = len(definitions.automations)
        applied = f"  automations  {count} applied at start (tripwire automations ls)\n"
        if count := len(definitions.slas):
            applied += f"  SLAs         {count} applied at start (tripwire sla ls)\n"
        if count := len(definitions.silences):
            applied += f"  silences     {count} maintenance windows (tripwire silence ls)\n"
        applied += "  alerts       tripwire alerts ls, or the dashboard's Alerts page\n"
    for url in following:
        applied += f"  following    {url} (state in /api/health)\n"
    export = "" if api == DEFAULT_API_URL else f"  export TRIPWIRE_API_URL={api}\n"
    return (
        f"\ntripwire is up\n"
        f"  dashboard {api}/ui/\n"
        f"  API       {api}   (OpenAPI: {api}/docs, health: {api}/api/health)\n"
        f"  NATS      {nats}\n"
        f"  database  {database}\n"
        f"  processes {processes}\n"
        f"{applied}"
        f"Try, in another terminal:\n"
        f"{export}"
        f"  .venv/bin/tripwire emit my.event --resource my.resource.id "
        f"--payload '{{\"rows\": 3}}'\n"
        f"  .venv/bin/tripwire events ls\n"
        f"  .venv/bin/tripwire events tail\n"
        f"Ctrl-C stops everything.\n"
    )


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
