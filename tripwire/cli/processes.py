"""`tripwire up` in several processes: which roles each runs, and the first process that
starts them, watches them and stops them.

One event loop is one core. Run together, the API, the worker, the actions and the timers
take turns on it, and a machine's other cores stay idle. So on a machine with more than
one core, `up` starts the embedded nats-server, brings the database to its schema,
applies the definitions, then starts the roles in processes of their own and keeps
watching them:

- the worker and the timers (`worker`, `sla`) share a process. Under SQLite they are the
  writers of the events, windows and outbox, and inside one process their transactions
  take turns without meeting SQLite's busy handler;
- the API and the actions (`api`, `actions`) share another; with three processes or more
  the actions get one of their own, and on PostgreSQL further processes are more workers.

Ctrl-C or SIGTERM stops every process (each gets SIGINT, as from Ctrl-C, once), then
nats-server last. A process that dies is
reported by its roles and `up` stops the others and exits with 1: a worker gone quietly
would leave an API accepting events that nothing stores.

Imported by `tripwire up` only: it brings the whole engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING

import click
import typer

from events.embedded import EmbeddedNats, free_port
from events.errors import EventsError
from tripwire.cli.output import fail
from tripwire.cli.serving import (
    Role,
    banner,
    check_port_free,
    nats_line,
    quiet_libraries,
    role_names,
    serve,
)
from tripwire.logs import configure_logging
from tripwire.settings import Settings

if TYPE_CHECKING:
    from events.sources import PrefectSource
    from tripwire.definitions import Definitions

__all__ = ["Part", "cores", "layout", "run_processes"]

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
STARTUP_TIMEOUT = 300.0  # seconds for every process to listen (imports, loading automations)
STOP_TIMEOUT = 60.0  # a process's own stop waits up to 30 s for a database pass and actions
WATCH_EVERY = 1.0  # seconds between looks at the embedded nats-server


@dataclass(frozen=True)
class Part:
    """One process of `up`: a name for messages and the roles it runs."""

    name: str
    roles: frozenset[Role]

    def describe(self) -> str:
        return role_names(self.roles)


def cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def layout(processes: int, *, sqlite: bool) -> list[Part]:
    """The processes for `--processes N`: 1 runs everything; 2 runs the worker and the
    timers beside the API and the actions; 3 gives the actions a process of their own;
    beyond that, more workers on PostgreSQL. SQLite stops at 3: one process writes the
    events file, the actions another."""
    if processes <= 1:
        return [Part("engine", frozenset(Role))]
    worker = Part("worker", frozenset({Role.worker, Role.sla}))
    if processes == 2:
        return [worker, Part("api", frozenset({Role.api, Role.actions}))]
    parts = [worker, Part("api", frozenset({Role.api})), Part("actions", frozenset({Role.actions}))]
    if not sqlite:
        parts += [Part(f"worker-{n}", frozenset({Role.worker})) for n in range(2, processes - 1)]
    return parts


def _die_with_parent() -> None:
    # Linux: killed with `up` when `up` dies without stopping this process (kill -9). Not
    # stopped gracefully: the embedded nats-server goes with `up`, and a stop that waits
    # for it would hang on. Nothing is lost: what was not acked comes back from JetStream,
    # what was committed but not published goes out with the relay.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _name_process(name: str) -> None:
    # What `ps -o comm` and `top` show, so that the processes can be told apart.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(15, f"tw-{name}".encode()[:15])


GROUPED = "grouped"  # a process's first note to `up`: it left the terminal's group
LISTENING = "listening"  # its second: it serves


def _child(
    settings: Settings,
    part: Part,
    sources: Sequence[PrefectSource],
    parent: int,
    notes: Connection,
    go: Connection,
) -> None:
    """A process of `up`: its roles until `up` stops it (SIGINT). It imports the engine at
    once, then waits for `up`'s go before it starts it."""
    # Ctrl-C reaches the terminal's whole process group. This process leaves it, so that
    # only `up` tells it to stop, and once: uvicorn takes a second SIGINT as "do not wait
    # for anything". It starts with SIGINT ignored (see `_spawn`) and takes it from `up`
    # only once `up` knows it left.
    os.setpgid(0, 0)
    _die_with_parent()
    if os.getppid() != parent:
        sys.exit(1)  # `up` died before this process could follow it
    _name_process(part.name)

    def announce() -> None:
        notes.send(LISTENING)
        notes.close()

    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        notes.send(GROUPED)
        if not go.recv():
            sys.exit(0)  # `up` stopped before this process was to start
        go.close()
        serve(
            settings,
            part.roles,
            sources=sources if Role.api in part.roles else [],
            announce=announce,
        )
    except (KeyboardInterrupt, EOFError):  # stopped before the engine had started
        sys.exit(0)
    except click.exceptions.Exit as exc:  # fail(): the message is printed already
        sys.exit(exc.exit_code)


@dataclass
class _Running:
    """A process of `up` and what it has told `up` so far."""

    part: Part
    process: BaseProcess
    port: int
    notes: Connection
    go: Connection
    going: bool = False  # told to start its engine
    grouped: bool = False
    listening: bool = False
    silent: bool = False  # its end of the pipe is closed: nothing more will come
    stopping: bool = False  # sent SIGINT

    def read(self) -> None:
        """Take the notes that have arrived."""
        try:
            while not self.silent and self.notes.poll():
                note = self.notes.recv()
                self.grouped |= note in (GROUPED, LISTENING)
                self.listening |= note == LISTENING
        except (EOFError, OSError):
            self.silent = True

    def start(self) -> None:
        """Let it start its engine."""
        if not self.going:
            self.going = True
            with contextlib.suppress(OSError):
                self.go.send(True)

    def stop(self) -> None:
        """SIGINT, once, as soon as it can take it (it left the terminal's group)."""
        if self.stopping or not self.grouped or self.process.exitcode is not None:
            return
        self.stopping = True
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(self.process.pid, signal.SIGINT)  # type: ignore[arg-type]


def _spawn(
    settings: Settings,
    part: Part,
    port: int,
    sources: Sequence[PrefectSource],
) -> _Running:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, no forked loop
    reader, writer = context.Pipe(duplex=False)
    go_reader, go_writer = context.Pipe(duplex=False)
    child_settings = settings.model_copy(update={"port": port})
    process = context.Process(
        target=_child,
        args=(child_settings, part, list(sources), os.getpid(), writer, go_reader),
        name=f"tripwire-{part.name}",
    )
    # An ignored signal stays ignored in the new process (a handler would not): a Ctrl-C
    # before it has left the terminal's group reaches `up` alone.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    writer.close()
    go_reader.close()
    return _Running(part, process, port, reader, go_writer)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "is running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


async def _prepare(settings: Settings, definitions: Definitions | None) -> None:
    """Schema and definitions, once, before any role starts."""
    from tripwire.database import create_engine, migrate
    from tripwire.definitions import apply as apply_definitions

    settings.home.mkdir(parents=True, exist_ok=True)
    urls = dict.fromkeys([settings.resolved_database_url, settings.ledger_database_url])
    for url in urls:
        db = create_engine(url)
        try:
            await migrate(db)
            if definitions is not None and url == settings.resolved_database_url:
                await apply_definitions(db, definitions.by_section)
        finally:
            await db.dispose()


class _Supervisor:
    """Starts the processes, tells the user, waits for a stop or a death, stops them all."""

    def __init__(self, settings: Settings, parts: list[Part]) -> None:
        self.settings = settings
        self.parts = parts
        self.running: list[_Running] = []
        self.stop_asked = 0  # stop signals received
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_asked += 1
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"!")

    def _wait(self, timeout: float) -> None:
        """Until a signal, a process's end or a note from a process, or `timeout`."""
        waitables: list[object] = [self._wake_read]
        waitables += [r.process.sentinel for r in self.running]
        waitables += [r.notes for r in self.running if not r.silent]
        found = wait(waitables, max(0.0, timeout))  # type: ignore[arg-type]
        if self._wake_read in found:
            os.read(self._wake_read, 64)
        for running in self.running:
            running.read()

    def _dead(self) -> _Running | None:
        return next((r for r in self.running if r.process.exitcode is not None), None)

    def run(
        self,
        sources: Sequence[PrefectSource],
        nats: EmbeddedNats | None,
        announce: Callable[[str], str],
    ) -> int:
        """Start, announce, watch; the exit code of `up`.

        Every process is spawned at once (importing the engine is most of a start), but
        the API's starts its engine only once the others listen: when the API answers,
        the whole engine runs (tests, scripts and the benchmarks wait for the API)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for part in self.parts:  # all at once: importing the engine is most of a start
            if self.stop_asked:
                break
            port = self.settings.port if Role.api in part.roles else free_port(self.settings.host)
            self.running.append(_spawn(self.settings, part, port, sources))
        first = [r for r in self.running if Role.api not in r.part.roles]
        for wave in (first, [r for r in self.running if r not in first]):
            for running in wave:
                running.start()
            while not self.stop_asked and not all(r.listening for r in wave):
                self._wait(min(WATCH_EVERY, deadline - time.monotonic()))
                if (dead := self._dead()) is not None:
                    return self._fail(
                        f"{self._name(dead)} {_exit_text(dead.process.exitcode)} "
                        "while starting; see its messages above"
                    )
                if time.monotonic() > deadline:
                    return self._fail(f"not every process listened within {STARTUP_TIMEOUT:.0f}s")
        if self.running and all(r.listening for r in self.running):
            # Also when a stop came as the last one began to listen: whoever saw the API
            # answer sees the banner.
            typer.echo(announce(self._table()))
        while not self.stop_asked:
            self._wait(WATCH_EVERY)
            if (dead := self._dead()) is not None:
                return self._fail(
                    f"{self._name(dead)} {_exit_text(dead.process.exitcode)}; stopping the others"
                )
            if nats is not None and nats.process is not None and nats.process.poll() is not None:
                return self._fail(
                    f"the embedded nats-server exited with code "
                    f"{nats.process.returncode}; see {nats.store_dir}"
                )
        return self._stop(0)

    @staticmethod
    def _name(running: _Running) -> str:
        return (
            f"the {running.part.name} process ({running.part.describe()}; "
            f"pid {running.process.pid})"
        )

    def _table(self) -> str:
        width = max(len(r.part.describe()) for r in self.running)
        lines = []
        for r in self.running:
            what = "API" if Role.api in r.part.roles else "health and metrics"
            lines.append(
                f"    {r.part.describe():<{width}}  pid {r.process.pid}  port {r.port} ({what})\n"
            )
        return "".join(lines)

    def _fail(self, message: str) -> int:
        typer.secho(f"error: {message}", fg="red", err=True)
        self._stop(1)
        return 1

    def _stop(self, code: int) -> int:
        """SIGINT to every process, then wait; a second Ctrl-C, or a process that takes
        longer than STOP_TIMEOUT, is killed.

        SIGINT, as Ctrl-C would: uvicorn stops gracefully on either, then raises the
        signal again, and SIGINT then ends the process with 0 where SIGTERM kills it."""
        asked = self.stop_asked
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            for running in self.running:
                running.stop()  # those still starting once they can take it
            late = [r for r in self.running if r.process.exitcode is None]
            if not late:
                break
            if self.stop_asked > asked or time.monotonic() > deadline:
                names = ", ".join(self._name(r) for r in late)
                typer.secho(f"error: killing what did not stop: {names}", fg="red", err=True)
                for running in late:
                    running.process.kill()
                    running.process.join()
                return 1
            self._wait(min(WATCH_EVERY, deadline - time.monotonic()))
        for running in self.running:
            running.process.join()
            if code == 0 and running.process.exitcode != 0:
                typer.secho(
                    f"error: {self._name(running)} "
                    f"{_exit_text(running.process.exitcode)} while stopping",
                    fg="red",
                    err=True,
                )
                code = 1
        return code


def run_processes(
    settings: Settings,
    parts: list[Part],
    definitions: Definitions | None,
    core_count: int,
) -> None:
    """`tripwire up` with its roles in `parts`: until Ctrl-C or SIGTERM, or until one
    process dies (then exit 1)."""
    from tripwire.following import followed_sources

    configure_logging(settings)
    quiet_libraries()
    check_port_free(settings)
    supervisor = _Supervisor(settings, parts)
    previous = {s: signal.signal(s, supervisor._on_signal) for s in STOP_SIGNALS}
    nats: EmbeddedNats | None = None
    code = 1
    try:
        if settings.nats_url is None:
            nats = EmbeddedNats(settings.nats_store_dir, settings.nats_port)
            nats.start()
            settings = settings.model_copy(update={"nats_url": nats.url})
            supervisor.settings = settings
        asyncio.run(_prepare(settings, definitions))
        sources = definitions.sources if definitions is not None else []
        following = [s.api_url for s in followed_sources(settings, sources)]
        shown = nats_line(settings, settings.nats_url or "", embedded=nats is not None)

        def announce(table: str) -> str:
            processes = f"{len(parts)} on {core_count} cores (--processes 1 runs one)\n{table}"
            return banner(settings, shown, definitions, following, processes.rstrip("\n"))

        code = supervisor.run(sources, nats, announce)
    except EventsError as exc:
        supervisor._stop(1)
        fail(str(exc))
    finally:
        if nats is not None:
            nats.stop()  # last: the processes flushed their acks and outbox through it
        for s, handler in previous.items():
            signal.signal(s, handler)
    if code:
        raise typer.Exit(code)
