"""Websocket ingest with Prefect's own events client: tripwire against a Prefect server.

    python -m bench.ingest --prefect-client [--events 7000] [--clients 1,4] [--rounds 3]

Starts `tripwire up` and a Prefect 3.8 server (`prefect server start` from .venv-prefect,
defaults, its own PREFECT_HOME and SQLite file) on free ports. For each client count, each
round and each server it starts that many processes of the Prefect venv's Python running
bench/prefect_scripts/events_client.py: each builds its events, connects Prefect's
`PrefectEventsClient` and waits. All are released at once; the figure is every client's
events over the time from the release to the last client's last emit. Each client sends
a multiple of its checkpoint interval, so its last emit returns only once the server
answered its checkpoint ping: every event counts as delivered for Prefect's client.

For tripwire the bench then checks JetStream itself: the events stream must hold every
event sent. One JSON object goes to stdout, with each figure's rounds and median.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson

from bench import harness
from bench.harness import log
from events.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
PREFECT_VENV = ROOT / ".venv-prefect"
PREFECT_PYTHON = PREFECT_VENV / "bin" / "python"
PREFECT = PREFECT_VENV / "bin" / "prefect"
CLIENT = Path(__file__).resolve().parent / "prefect_scripts" / "events_client.py"
CHECKPOINT_EVERY = 700  # Prefect's default
START_TIMEOUT = 90.0
READY_TIMEOUT = 120.0  # importing Prefect and building the events, per client
RUN_TIMEOUT = 300.0
STOP_TIMEOUT = 20.0


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """This environment without PREFECT_*, with a home of its own and no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_CLIENT_METRICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    return env


def start_prefect(port: int, home: Path) -> subprocess.Popen[bytes]:
    """`prefect server start` with its defaults (services on), in its own session."""
    env = prefect_env(home) | {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    with (home / "server.log").open("wb") as output:
        return subprocess.Popen(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
            start_new_session=True,
        )


def wait_prefect(process: subprocess.Popen[bytes], url: str, home: Path) -> None:
    """Until the Prefect server answers /api/health."""
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (home / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the Prefect server exited ({process.returncode}):\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{url}/health").is_success:
                    return
            time.sleep(0.3)
    raise RuntimeError(f"the Prefect server was not healthy within {START_TIMEOUT:g}s")


def stop_prefect(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM its session (the server and what it started), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


async def _read_line(process: asyncio.subprocess.Process, timeout: float) -> bytes:
    assert process.stdout is not None
    async with asyncio.timeout(timeout):
        return await process.stdout.readline()


async def send_with_clients(
    api_url: str, home: Path, clients: int, events: int
) -> tuple[float, float]:
    """Events/s of `clients` Prefect clients sending `events` each, released together, and
    the clients' own CPU time per event (µs)."""
    env = prefect_env(home, api_url)
    processes = [
        await asyncio.create_subprocess_exec(
            str(PREFECT_PYTHON),
            str(CLIENT),
            str(events),
            str(CHECKPOINT_EVERY),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=home,
        )
        for _ in range(clients)
    ]
    try:
        for process in processes:
            line = await _read_line(process, READY_TIMEOUT)
            if line.strip() != b"ready":
                assert process.stderr is not None
                error = (await process.stderr.read()).decode(errors="replace")[-2000:]
                raise RuntimeError(f"a Prefect client did not connect:\n{error}")
        started = time.perf_counter()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
        await asyncio.gather(*(p.stdin.drain() for p in processes if p.stdin))
        cpu = 0.0
        for process in processes:
            line = await _read_line(process, RUN_TIMEOUT)
            if not line.startswith(b"{"):
                assert process.stderr is not None
                error = (await process.stderr.read()).decode(errors="replace")[-2000:]
                raise RuntimeError(f"a Prefect client failed:\n{error}")
            cpu += orjson.loads(line)["cpu_seconds"]
        seconds = time.perf_counter() - started
        for process in processes:
            await process.wait()
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    return clients * events / seconds, cpu * 1e6 / (clients * events)


async def stream_messages(nats_url: str, stream: str) -> int:
    """Messages in a JetStream stream now."""
    connection = await nats.connect(nats_url)
    try:
        info = await connection.jetstream().stream_info(stream)
        return int(info.state.messages)
    finally:
        await connection.close()


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and everything it started (tripwire: its nats-server too)."""
    own = harness.cpu_seconds(pid) or 0.0
    return own + sum(tree_cpu_seconds(child) for child in harness.children(pid))


@contextlib.contextmanager
def servers(home: Path) -> Iterator[dict[str, Any]]:
    """tripwire and a Prefect server, both healthy; stopped on the way out."""
    port, nats_port, prefect_port = free_port(), free_port(), free_port()
    (home / "tripwire").mkdir()
    (home / "prefect").mkdir()
    engine = harness.start_engine(port, home / "tripwire", nats_port=nats_port)
    prefect = start_prefect(prefect_port, home / "prefect")
    try:

        async def engine_healthy() -> None:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await harness.wait_healthy(client, engine, home / "tripwire", START_TIMEOUT)

        asyncio.run(engine_healthy())
        wait_prefect(prefect, f"http://127.0.0.1:{prefect_port}/api", home / "prefect")
        log(
            f"tripwire pid {engine.pid} on {port}; "
            f"Prefect server pid {prefect.pid} on {prefect_port}"
        )
        yield {
            "tripwire": f"http://127.0.0.1:{port}/api",
            "prefect": f"http://127.0.0.1:{prefect_port}/api",
            "nats": f"nats://127.0.0.1:{nats_port}",
            "pids": {"tripwire": engine.pid, "prefect": prefect.pid},
        }
    finally:
        harness.stop_engine(engine, home / "tripwire")
        log(f"stopping the Prefect server (pid {prefect.pid})")
        stop_prefect(prefect)


def run(events: int = 7000, clients: tuple[int, ...] = (1, 4), rounds: int = 3) -> dict[str, Any]:
    """Run the comparison and return the result object."""
    if events < CHECKPOINT_EVERY or events % CHECKPOINT_EVERY:
        raise ValueError(
            f"--events must be a multiple of {CHECKPOINT_EVERY}, the client's checkpoint"
        )
    if not PREFECT_PYTHON.exists():
        raise RuntimeError(
            f"no Prefect venv at {PREFECT_VENV}: run `make .venv-prefect/bin/prefect`"
        )
    figures: dict[str, dict[str, list[float]]] = {"tripwire": {}, "prefect": {}}
    client_cpu: dict[str, dict[str, list[float]]] = {"tripwire": {}, "prefect": {}}
    server_cpu: dict[str, dict[str, list[float]]] = {"tripwire": {}, "prefect": {}}
    missing = 0
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-") as tmp:
        home = Path(tmp)
        with servers(home) as urls:
            stream = "TRIPWIRE_EVENTS"
            for number in range(1, rounds + 1):
                for count in clients:
                    for system in ("tripwire", "prefect"):
                        before = asyncio.run(stream_messages(urls["nats"], stream))
                        pid = urls["pids"][system]
                        cpu_before = tree_cpu_seconds(pid)
                        rate, cpu_us = asyncio.run(
                            send_with_clients(urls[system], home, count, events)
                        )
                        server_us = (tree_cpu_seconds(pid) - cpu_before) * 1e6 / (count * events)
                        if system == "tripwire":
                            added = asyncio.run(stream_messages(urls["nats"], stream)) - before
                            missing += max(0, count * events - added)
                        figures[system].setdefault(str(count), []).append(round(rate, 1))
                        client_cpu[system].setdefault(str(count), []).append(round(cpu_us, 1))
                        server_cpu[system].setdefault(str(count), []).append(round(server_us, 1))
                        log(
                            f"round {number}: {system}, {count} client(s): {rate:,.0f} events/s, "
                            f"CPU per event: clients {cpu_us:.0f} µs, server {server_us:.0f} µs"
                        )
    return {
        "benchmark": "ingest-websocket",
        "events_per_client": events,
        "checkpoint_every": CHECKPOINT_EVERY,
        "rounds": rounds,
        "events_per_s": {
            system: {
                count: round(statistics.median(values), 1) for count, values in by_count.items()
            }
            for system, by_count in figures.items()
        },
        "rounds_events_per_s": figures,
        # What Prefect's client itself spends per event it emits: on a shared machine
        # this is CPU the servers do not get.
        "client_cpu_us_per_event": {
            system: {
                count: round(statistics.median(values), 1) for count, values in by_count.items()
            }
            for system, by_count in client_cpu.items()
        },
        # The server's process tree while the clients ran (tripwire's includes its
        # nats-server and its store worker; Prefect's its services); clients start up in
        # that time too, so this is an upper bound.
        "server_cpu_us_per_event": {
            system: {
                count: round(statistics.median(values), 1) for count, values in by_count.items()
            }
            for system, by_count in server_cpu.items()
        },
        "tripwire_events_missing_from_jetstream": missing,
        "machine": harness.machine(with_cpu_model=True),
    }


def main(events: int, clients: str, rounds: int) -> int:
    """`python -m bench.ingest --prefect-client`: print the result object."""
    counts = tuple(int(c) for c in clients.split(","))
    result = harness.run_or_log_error(lambda: run(events, counts, rounds))
    if result is None:
        return 2
    print(orjson.dumps(result).decode(), flush=True)
    return 0 if result["tripwire_events_missing_from_jetstream"] == 0 else 1
