"""Ingest benchmark: POST batches of events to a throwaway engine and time them into the store.

    python -m bench.ingest [--seconds 60] [--batch 500] [--concurrency 4] [--port P]

Starts `tripwire up` on a free port with a fresh temporary home, keeps `--concurrency`
POST /api/events requests of `--batch` pre-serialised events in flight for `--seconds`,
polls the store's count once a second, waits until every accepted event is stored, then
reads `received` and `recorded` from the SQLite file for the ingest-to-store latency.
Progress goes to stderr; one JSON object with the results goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import orjson
from uuid6 import uuid7

from events.embedded import free_port

HEALTH_TIMEOUT = 30.0
CATCH_UP_TIMEOUT = 300.0  # at most this long after the load for the store to catch up,
CATCH_UP_STALL = 30.0  # and never longer than this without the count moving
# nats-py's drain of the store's pull subscription can run into its 30 s drain_timeout.
STOP_TIMEOUT = 40.0
POLL_EVERY = 1.0
CATCH_UP_POLL_EVERY = 0.5
REQUEST_TIMEOUT = 60.0
DEFAULT_MAX_RATE = 15_000
JSON_HEADERS = {"content-type": "application/json"}

STATES = ("Scheduled", "Pending", "Running", "Completed", "Failed", "Crashed")


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- events -------------------------------------------------------------------------------


class EventFactory:
    """Realistic Prefect-like flow-run events with unique ids, serialised a batch at a time."""

    def __init__(self, runs: int = 1000, flows: int = 50, deployments: int = 20) -> None:
        self.runs = [str(uuid4()) for _ in range(runs)]
        self.flows = [str(uuid4()) for _ in range(flows)]
        self.deployments = [str(uuid4()) for _ in range(deployments)]
        self.count = 0
        self.base = datetime.now(UTC)

    def event(self) -> dict[str, Any]:
        """The next event."""
        n = self.count
        self.count += 1
        state = STATES[n % len(STATES)]
        run = self.runs[n % len(self.runs)]
        flow = n % len(self.flows)
        deployment = n % len(self.deployments)
        return {
            "id": str(uuid7()),  # time-ordered, as Prefect's client sends them
            "occurred": (self.base + timedelta(microseconds=n)).isoformat(),
            "event": f"bench.flow-run.{state}",
            "resource": {
                "prefect.resource.id": f"prefect.flow-run.{run}",
                "prefect.resource.name": f"bench-run-{n % len(self.runs)}",
                "prefect.state-type": state.upper(),
            },
            "related": [
                {
                    "prefect.resource.id": f"prefect.flow.{self.flows[flow]}",
                    "prefect.resource.role": "flow",
                    "prefect.resource.name": f"etl-flow-{flow}",
                },
                {
                    "prefect.resource.id": f"prefect.deployment.{self.deployments[deployment]}",
                    "prefect.resource.role": "deployment",
                    "prefect.resource.name": f"etl-deployment-{deployment}",
                },
            ],
            "payload": {
                "intended": {"from": "RUNNING", "to": state.upper()},
                "rows": n % 10_000,
                "duration_s": round((n % 600) / 7, 3),
            },
        }

    def batch(self, size: int) -> bytes:
        """A JSON array of `size` new events."""
        return orjson.dumps([self.event() for _ in range(size)])


# --- the engine ---------------------------------------------------------------------------


def start_engine(port: int, home: Path) -> subprocess.Popen[bytes]:
    """`tripwire up` in its own session, output to home/engine.log, TRIPWIRE_* env ignored."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPWIRE_")}
    env["TRIPWIRE_LOG_LEVEL"] = "WARNING"
    command = [sys.executable, "-m", "tripwire.cli", "up", "--port", str(port), "--home", str(home)]
    with (home / "engine.log").open("wb") as output:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def stop_engine(process: subprocess.Popen[bytes], home: Path) -> None:
    """SIGINT and wait; then SIGKILL its process group (it and its nats-server)."""
    if process.poll() is None:
        log(f"stopping the engine (pid {process.pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(
                f"the engine did not stop within {STOP_TIMEOUT:.0f}s; killing it. Its log ends:\n"
                f"{engine_log_tail(home)}"
            )
    # The group is the engine's own session (start_new_session): only what it started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def engine_log_tail(home: Path, lines: int = 20) -> str:
    """The last lines the engine printed."""
    path = home / "engine.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def wait_healthy(api: str, process: subprocess.Popen[bytes], home: Path) -> None:
    """Until GET /api/health answers 200; raises when the engine exits or times out."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    async with httpx.AsyncClient(base_url=api, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the engine exited with code {process.returncode}:\n{engine_log_tail(home)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/api/health")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(
        f"the engine was not healthy within {HEALTH_TIMEOUT:.0f}s:\n{engine_log_tail(home)}"
    )


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a live process, in MiB."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else round(kb / 1024, 1)


def children(pid: int) -> list[int]:
    """Direct children of a process."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Run:
    """What one run measured."""

    accepted: int = 0
    load_seconds: float = 0.0
    stored_at_load_end: int = 0
    stored: int = 0
    catch_up_seconds: float | None = None
    errors: Counter[str] = field(default_factory=Counter)
    post_ms: list[float] = field(default_factory=list)
    batches_built_during_load: int = 0
    cpu_percent: dict[str, float | None] = field(default_factory=dict)
    engine_rss_mb: float | None = None
    nats_rss_mb: float | None = None


async def stored_total(client: httpx.AsyncClient) -> int:
    """How many events the store holds (POST /api/events/filter, limit 1)."""
    response = await client.post("/api/events/filter", json={"filter": {}, "limit": 1})
    response.raise_for_status()
    return int(response.json()["total"])


async def poll_store(
    client: httpx.AsyncClient, run: Run, started: float, stop: asyncio.Event
) -> None:
    """Once a second: the store's count, logged to stderr with the accepted count."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_EVERY)
        try:
            total = await stored_total(client)
        except httpx.HTTPError as exc:
            run.errors[f"poll_{type(exc).__name__}"] += 1
            continue
        at = time.monotonic() - started
        log(f"t={at:5.1f}s accepted={run.accepted:>9,} stored={total:>9,}")


async def load(
    client: httpx.AsyncClient,
    run: Run,
    pool: list[bytes],
    factory: EventFactory,
    batch: int,
    concurrency: int,
    deadline: float,
    rate: float | None = None,
) -> None:
    """`concurrency` workers POST batches until the deadline; in-flight requests finish.

    With `rate`, batches are paced to offer that many events per second (an open load),
    so the store's sustained rate can be measured at a given ingest rate."""
    index = 0
    issued = 0
    started = time.monotonic()

    async def worker() -> None:
        nonlocal index, issued
        while time.monotonic() < deadline:
            if rate:
                due = started + issued * batch / rate
                issued += 1
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
            if index < len(pool):
                body = pool[index]
                pool[index] = b""  # sent once: let it go
                index += 1
            else:
                body = factory.batch(batch)
                run.batches_built_during_load += 1
            sent = time.perf_counter()
            try:
                response = await client.post("/api/events", content=body, headers=JSON_HEADERS)
            except httpx.HTTPError as exc:
                run.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.1)
                continue
            run.post_ms.append((time.perf_counter() - sent) * 1000)
            if response.status_code == 202:
                run.accepted += batch
            else:
                run.errors[f"http_{response.status_code}"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(
    api: str,
    engine: subprocess.Popen[bytes],
    home: Path,
    pool: list[bytes],
    factory: EventFactory,
    seconds: float,
    batch: int,
    concurrency: int,
    rate: float | None = None,
) -> Run:
    """Load, poll, catch up; the engine's peak memory is read before returning."""
    run = Run()
    await wait_healthy(api, engine, home)
    log(f"engine healthy at {api} (pid {engine.pid}); loading for {seconds:g}s")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    nats = children(engine.pid)
    watched = {"engine": engine.pid, **({"nats": nats[0]} if nats else {})}
    async with (
        httpx.AsyncClient(base_url=api, timeout=REQUEST_TIMEOUT, limits=limits) as loader,
        httpx.AsyncClient(base_url=api, timeout=REQUEST_TIMEOUT) as poller,
    ):
        cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
        own_before = time.process_time()
        started = time.monotonic()
        stop = asyncio.Event()
        polling = asyncio.create_task(poll_store(poller, run, started, stop))
        try:
            await load(loader, run, pool, factory, batch, concurrency, started + seconds, rate)
        finally:
            stop.set()
            await polling
        run.load_seconds = time.monotonic() - started
        for name, pid in watched.items():
            before, after = cpu_before[name], cpu_seconds(pid)
            run.cpu_percent[name] = (
                None
                if before is None or after is None
                else round(100 * (after - before) / run.load_seconds, 1)
            )
        run.cpu_percent["bench_client"] = round(
            100 * (time.process_time() - own_before) / run.load_seconds, 1
        )
        run.stored_at_load_end = await stored_total(poller)
        log(
            f"load done in {run.load_seconds:.1f}s: accepted {run.accepted:,}, "
            f"stored {run.stored_at_load_end:,}; waiting for the store to catch up"
        )
        run.stored = run.stored_at_load_end
        catch_up_deadline = time.monotonic() + CATCH_UP_TIMEOUT
        moved = logged = time.monotonic()
        while run.stored < run.accepted and time.monotonic() < catch_up_deadline:
            if time.monotonic() - moved > CATCH_UP_STALL:
                log(f"the store count did not move for {CATCH_UP_STALL:.0f}s")
                break
            await asyncio.sleep(CATCH_UP_POLL_EVERY)
            try:
                total = await stored_total(poller)
            except httpx.HTTPError as exc:
                run.errors[f"poll_{type(exc).__name__}"] += 1
                continue
            if total != run.stored:
                run.stored, moved = total, time.monotonic()
            if moved - logged >= POLL_EVERY:
                logged = moved
                log(f"t={moved - started:5.1f}s catching up: stored={total:>9,}")
        if run.stored >= run.accepted:
            run.catch_up_seconds = time.monotonic() - started
            log(f"stored {run.stored:,} events {run.catch_up_seconds:.1f}s after the load began")
        else:
            log(f"the store did not catch up ({run.stored:,} of {run.accepted:,} stored)")
    run.engine_rss_mb = peak_rss_mb(engine.pid)
    if "nats" in watched:
        run.nats_rss_mb = peak_rss_mb(watched["nats"])
    return run


# --- latency from the database ------------------------------------------------------------


def _parse_stored_time(value: str) -> datetime:
    # SQLAlchemy's SQLite DateTime: 'YYYY-MM-DD HH:MM:SS.ffffff', UTC, no offset.
    return datetime.fromisoformat(value)


def stored_latencies_ms(database: Path) -> list[float]:
    """recorded - received of every stored event, in milliseconds, sorted."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT received, recorded FROM events").fetchall()
    finally:
        connection.close()
    return sorted(
        (_parse_stored_time(recorded) - _parse_stored_time(received)).total_seconds() * 1000
        for received, recorded in rows
    )


def percentiles(values: Sequence[float], sort: bool = True) -> dict[str, float | None]:
    """Nearest-rank p50, p90, p99 and max."""
    ordered = sorted(values) if sort else values
    if not ordered:
        return {"p50": None, "p90": None, "p99": None, "max": None}

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": round(ordered[-1], 1)}


# --- the run ------------------------------------------------------------------------------


def run(
    seconds: float = 60.0,
    batch: int = 500,
    concurrency: int = 4,
    port: int | None = None,
    max_rate: int = DEFAULT_MAX_RATE,
    rate: float | None = None,
) -> dict[str, Any]:
    """Run the benchmark against a new engine and return the result object."""
    if seconds <= 0 or batch < 1 or concurrency < 1 or max_rate < 1:
        raise ValueError("--seconds, --batch, --concurrency and --max-rate must be positive")
    factory = EventFactory()
    batches = math.ceil(seconds * max_rate / batch) + concurrency
    log(f"serialising {batches:,} batches of {batch} events ({batches * batch:,} events)")
    pool = [factory.batch(batch) for _ in range(batches)]
    log(
        f"pool ready: {sum(len(b) for b in pool) / 2**20:,.0f} MiB, "
        f"{len(pool[0]) / batch:,.0f} bytes per event"
    )
    port = port or free_port()
    api = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-") as tmp:
        home = Path(tmp)
        engine = start_engine(port, home)
        log(f"engine pid {engine.pid}, home {home}")
        try:
            result = asyncio.run(
                measure(api, engine, home, pool, factory, seconds, batch, concurrency, rate)
            )
            del pool
            latencies = stored_latencies_ms(home / "tripwire.db")
        finally:
            stop_engine(engine, home)
    load_s = result.load_seconds
    return {
        "benchmark": "ingest",
        "seconds": seconds,
        "batch": batch,
        "concurrency": concurrency,
        "offered_rate": rate,
        "accepted": result.accepted,
        "accepted_per_s": round(result.accepted / load_s, 1),
        "stored_per_s_during_load": round(result.stored_at_load_end / load_s, 1),
        "stored_per_s_to_catch_up": (
            round(result.accepted / result.catch_up_seconds, 1) if result.catch_up_seconds else None
        ),
        "latency_ms": percentiles(latencies, sort=False),
        "errors": dict(result.errors),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "engine_rss_mb": result.engine_rss_mb,
        # Details beyond the headline numbers.
        "load_seconds": round(load_s, 2),
        "stored": result.stored,
        "stored_at_load_end": result.stored_at_load_end,
        "catch_up_seconds": round(result.catch_up_seconds, 2) if result.catch_up_seconds else None,
        "post_ms": percentiles(result.post_ms),
        "cpu_percent_during_load": result.cpu_percent,
        "nats_rss_mb": result.nats_rss_mb,
        "batches_built_during_load": result.batches_built_during_load,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m bench.ingest`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="load duration (default 60)")
    parser.add_argument("--batch", type=int, default=500, help="events per POST (default 500)")
    parser.add_argument("--concurrency", type=int, default=4, help="POSTs in flight (default 4)")
    parser.add_argument("--port", type=int, default=None, help="engine API port (default free)")
    parser.add_argument(
        "--max-rate",
        type=int,
        default=DEFAULT_MAX_RATE,
        help="events/s the pre-serialised pool covers; past it batches are "
        f"serialised during the load (default {DEFAULT_MAX_RATE})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="offer this many events/s (paced); default: as fast as the engine accepts",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; 0 when every accepted event was stored without errors."""
    args = parse_args(argv)
    try:
        result = run(
            args.seconds, args.batch, args.concurrency, args.port, args.max_rate, args.rate
        )
    except (RuntimeError, ValueError) as exc:
        log(f"error: {exc}")
        return 2
    print(orjson.dumps(result).decode(), flush=True)
    return 0 if result["stored"] >= result["accepted"] and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
