"""Ingest benchmark: POST batches of events to a throwaway engine and time them into the store.

    python -m bench.ingest [--seconds 60] [--batch 500] [--concurrency 4] [--port P]
    python -m bench.ingest --prefect-client [--events 7000] [--clients 1,4] [--rounds 3]

Starts `tripwire up` on a free port with a fresh temporary home, keeps `--concurrency`
POST /api/events requests of `--batch` pre-serialised events in flight for `--seconds`,
polls the store's count once a second, waits until every accepted event is stored, then
reads `received` and `recorded` from the SQLite file for the ingest-to-store latency.
Progress goes to stderr; one JSON object with the results goes to stdout.

With `--prefect-client` it compares websocket ingest from Prefect's own events client,
tripwire against a Prefect server started beside it (bench/prefect_ingest.py).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import orjson
from uuid6 import uuid7

from bench import harness, prefect_ingest
from bench.harness import log
from events.embedded import free_port

HEALTH_TIMEOUT = 30.0
CATCH_UP_TIMEOUT = 300.0  # at most this long after the load for the store to catch up,
CATCH_UP_STALL = 30.0  # and never longer than this without the count moving
POLL_EVERY = 1.0
CATCH_UP_POLL_EVERY = 0.5
DEFAULT_MAX_RATE = 15_000
PERCENTILES = (50, 90, 99)

STATES = ("Scheduled", "Pending", "Running", "Completed", "Failed", "Crashed")


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


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Run(harness.BatchLoad):
    """What one run measured."""

    stored: int = 0
    catch_up_seconds: float | None = None
    cpu_percent: dict[str, float | None] = field(default_factory=dict)
    engine_rss_mb: float | None = None
    nats_rss_mb: float | None = None


async def log_progress(client: httpx.AsyncClient, run: Run, started: float) -> None:
    """The store's count, logged to stderr with the accepted count."""
    try:
        total = await harness.stored_total(client)
    except httpx.HTTPError as exc:
        run.errors[f"poll_{type(exc).__name__}"] += 1
        return
    at = time.monotonic() - started
    log(f"t={at:5.1f}s accepted={run.accepted:>9,} stored={total:>9,}")


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
    async with (
        harness.load_client(api, connections=concurrency) as loader,
        httpx.AsyncClient(base_url=api, timeout=harness.REQUEST_TIMEOUT) as poller,
    ):
        await harness.wait_healthy(poller, engine, home, HEALTH_TIMEOUT)
        log(f"engine healthy at {api} (pid {engine.pid}); loading for {seconds:g}s")
        processes = harness.Processes(engine.pid)  # once healthy: its nats-server is running
        processes.mark()
        own_before = time.process_time()
        started = time.monotonic()
        async with harness.every(POLL_EVERY, lambda: log_progress(poller, run, started)):
            await harness.post_batches(
                loader, run, pool, factory.batch, batch, concurrency, started + seconds, rate
            )
        run.load_seconds = time.monotonic() - started
        run.cpu_percent = processes.percent()
        run.cpu_percent["bench_client"] = round(
            100 * (time.process_time() - own_before) / run.load_seconds, 1
        )
        run.stored_at_load_end = await harness.stored_total(poller)
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
                total = await harness.stored_total(poller)
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
    rss = processes.rss_mb()
    run.engine_rss_mb, run.nats_rss_mb = rss["engine"], rss.get("nats")
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
    pool = harness.serialise_pool(factory.batch, batch, batches)
    port = port or free_port()
    api = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-") as tmp:
        home = Path(tmp)
        engine = harness.start_engine(port, home)
        log(f"engine pid {engine.pid}, home {home}")
        try:
            result = asyncio.run(
                measure(api, engine, home, pool, factory, seconds, batch, concurrency, rate)
            )
            del pool
            latencies = stored_latencies_ms(home / "tripwire.db")
        finally:
            harness.stop_engine(engine, home)
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
        "latency_ms": harness.percentiles(latencies, PERCENTILES, sort=False),
        "errors": dict(result.errors),
        "machine": harness.machine(),
        "engine_rss_mb": result.engine_rss_mb,
        # Details beyond the headline numbers.
        "load_seconds": round(load_s, 2),
        "stored": result.stored,
        "stored_at_load_end": result.stored_at_load_end,
        "catch_up_seconds": round(result.catch_up_seconds, 2) if result.catch_up_seconds else None,
        "post_ms": harness.percentiles(result.post_ms, PERCENTILES),
        "cpu_percent_during_load": result.cpu_percent,
        "nats_rss_mb": result.nats_rss_mb,
        "batches_built_during_load": result.batches_built_during_load,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m bench.ingest`."""
    parser = harness.argument_parser("bench.ingest", __doc__)
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
    parser.add_argument(
        "--prefect-client",
        action="store_true",
        help="websocket ingest from Prefect's own events client, tripwire against a "
        "Prefect server (the options below; the ones above do not apply)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=7000,
        help="with --prefect-client: events per client, a multiple of 700 (default 7000)",
    )
    parser.add_argument(
        "--clients",
        default="1,4",
        help="with --prefect-client: client counts to run, comma-separated (default 1,4)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="with --prefect-client: rounds (default 3)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; 0 when every accepted event was stored without errors."""
    args = parse_args(argv)
    if args.prefect_client:
        return prefect_ingest.main(args.events, args.clients, args.rounds)
    result = harness.run_or_log_error(
        lambda: run(args.seconds, args.batch, args.concurrency, args.port, args.max_rate, args.rate)
    )
    if result is None:
        return 2
    print(orjson.dumps(result).decode(), flush=True)
    return 0 if result["stored"] >= result["accepted"] and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
