"""Memory benchmark: one worker's memory with 1,000 automations and 100,000 open windows.

    python -m bench.memory [--automations 1000] [--windows 100000] [--batch 500]
                           [--postgres URL]

Starts nats-server (events.embedded), then `tripwire serve api`, `tripwire serve worker
--no-actions` and `tripwire serve sla` apart, on a SQLite file in a temporary home, or with
`--postgres URL` (an admin DSN) on a PostgreSQL database created for the run and dropped
at its end (`tw_bench_<hex>`, as bench/scale.py does).

The automations, written to a YAML file and applied with `tripwire apply` once the
processes run, each watch events of their own name (`bench.memory.<i>.…`), for_each
`prefect.resource.id`, within 1 day, with a `match` glob on the resource id; half are
Reactive (expect `failed`, threshold 2), half Proactive (after `started`, expect
`finished`, threshold 1); half also have `match_related` on a flow, a third a `where`.
Actions: `do-nothing`. The events are one per key: key k goes to automation k mod
`--automations` (`failed` for a Reactive one, `started` for a Proactive one), with a flow
as related resource. So each key opens one window that stays open: a Reactive window
counts 1 of 2, a Proactive one waits a day for `finished`. The events are POSTed in
`--batch`-event batches, 4 in flight, and the run waits until `trigger_buckets` holds a row
per key (read from the database itself).

The worker's memory comes from /proc/PID/status: `rss_mb` (VmRSS) once it is settled
(unchanged within 1 MiB over 3 s), `peak_rss_mb` (VmHWM) since the phase began (the
peak is reset through /proc/PID/clear_refs at each phase; `peak_reset` says whether
that worked), and its anonymous and file-backed parts. Phases: `started` (healthy, no
automations), `automations` (the worker logged that it loaded them), `windows` (every
window written, the store consumer's lag 0), and `restarted` (the worker stopped and
started again on the same store: what a worker holds when it starts with them). The
api's, sla's and nats-server's memory is given per phase as well.

`met`: the worker's peak over every phase is at most `target_mb` (500).

Progress goes to stderr; one JSON object with the results goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import yaml
from uuid6 import uuid7

from bench import harness, scale, sla, triggers
from bench.harness import log
from events.embedded import EmbeddedNats, free_port
from tripwire.settings import Settings

TARGET_MB = 500.0
WITHIN = "1d"
FLOWS = 50  # flows the events name as related resource
CONCURRENCY = 4  # POSTs in flight
HEALTH_TIMEOUT = 120.0
LOAD_TIMEOUT = 300.0  # at most this long for the worker to log the automations loaded
WINDOWS_TIMEOUT = 1800.0  # at most this long for the windows to be written,
WINDOWS_STALL = 60.0  # and never longer than this without their count moving
SETTLE_SPAN = 3.0  # settled: RSS within SETTLE_MB over this many seconds,
SETTLE_MB = 1.0
SETTLE_TIMEOUT = 30.0  # or this long at most


# --- the automations and the events -------------------------------------------------------


def proactive(i: int) -> bool:
    """Automation i is Proactive (odd) or Reactive (even)."""
    return i % 2 == 1


def automation(i: int) -> dict[str, Any]:
    """Automation `i`: windows per resource of `bench.memory.<i>.*`, never fired here."""
    prefix = f"bench.memory.{i}"
    trigger: dict[str, Any] = {
        "type": "event",
        "match": {"prefect.resource.id": f"{prefix}.*"},
        "for_each": ["prefect.resource.id"],
        "within": WITHIN,
    }
    if proactive(i):  # a job that started must finish within the day
        trigger |= {
            "posture": "Proactive",
            "after": [f"{prefix}.started"],
            "expect": [f"{prefix}.finished"],
            "threshold": 1,
        }
    else:  # a job that fails twice in a day
        trigger |= {"posture": "Reactive", "expect": [f"{prefix}.failed"], "threshold": 2}
    if i % 4 < 2:
        trigger["match_related"] = {
            "prefect.resource.role": "flow",
            "prefect.resource.name": f"flow-{i % FLOWS}",
        }
    if i % 3 == 0:
        trigger["where"] = "payload.attempt >= `1`"
    return {
        "name": f"bench-memory-{i:04d}",
        "description": f"Jobs of bench.memory.{i}: one window per job",
        "tags": ["bench", "memory"],
        "trigger": trigger,
        "actions": [{"type": "do-nothing"}],
    }


def write_automations(folder: Path, count: int) -> Path:
    """The automations as one YAML file in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench-memory.yaml"
    body = {"automations": [automation(i) for i in range(count)]}
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def event(key: int, automations: int) -> bytes:
    """The one event of key `key`: it opens a window of automation key mod `automations`."""
    i = key % automations
    name = "started" if proactive(i) else "failed"
    return orjson.dumps(
        {
            "id": str(uuid7()),
            "occurred": triggers.TIME.decode(),
            "event": f"bench.memory.{i}.{name}",
            "resource": {
                "prefect.resource.id": f"bench.memory.{i}.job-{key}",
                "prefect.resource.name": f"job-{key}",
            },
            "related": [
                {
                    "prefect.resource.id": f"prefect.flow.bench-{i % FLOWS}",
                    "prefect.resource.role": "flow",
                    "prefect.resource.name": f"flow-{i % FLOWS}",
                }
            ],
            "payload": {"attempt": 1},
        }
    )


def batches(windows: int, automations: int, batch: int) -> tuple[list[bytes], list[int]]:
    """The events of every key as JSON arrays of `batch`, the time still a placeholder;
    and the size of each."""
    pool, sizes = [], []
    for start in range(0, windows, batch):
        keys = range(start, min(windows, start + batch))
        pool.append(b"[" + b",".join(event(k, automations) for k in keys) + b"]")
        sizes.append(len(keys))
    return pool, sizes


# --- memory from /proc --------------------------------------------------------------------


STATUS = {"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb", "RssAnon": "anon_mb", "RssFile": "file_mb"}


def status_mb(pid: int) -> dict[str, float]:
    """A live process's memory in MiB ({} when it is gone): `rss_mb` (VmRSS), `peak_rss_mb`
    (VmHWM), `anon_mb` (RssAnon: the heap) and `file_mb` (RssFile: code and mapped files)."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in STATUS:
                found[STATUS[key]] = round(int(value.split()[0]) / 1024, 1)
    return found


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux: 5 > /proc/PID/clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def settled(pid: int) -> dict[str, Any]:
    """The process's memory once its RSS stays within SETTLE_MB over SETTLE_SPAN seconds
    (or after SETTLE_TIMEOUT): `rss_mb`, `peak_rss_mb` since the last reset, `anon_mb`,
    `file_mb`, and how long settling took."""
    started = time.monotonic()
    samples: list[tuple[float, float]] = []
    while True:
        now, current = time.monotonic(), status_mb(pid)
        if "rss_mb" not in current:
            return {}
        samples.append((now, current["rss_mb"]))
        recent = [rss for at, rss in samples if now - at <= SETTLE_SPAN]
        spanned = now - samples[0][0] >= SETTLE_SPAN
        if (spanned and max(recent) - min(recent) <= SETTLE_MB) or (
            now - started >= SETTLE_TIMEOUT
        ):
            break
        await asyncio.sleep(0.25)
    return {**current, "settle_seconds": round(now - started, 1)}


# --- the database -------------------------------------------------------------------------


@dataclass
class Database:
    """Where the engine stores: a SQLite file, or a PostgreSQL database made for the run."""

    url: str  # TRIPWIRE_DATABASE_URL
    sqlite_path: Path | None = None
    dsn: str | None = None  # asyncpg's, for PostgreSQL

    @property
    def dialect(self) -> str:
        return "sqlite" if self.sqlite_path is not None else "postgresql"

    async def windows(self) -> dict[str, int]:
        """Rows of trigger_buckets: all, and the Proactive ones."""
        query = "SELECT count(*), coalesce(sum(CASE WHEN proactive THEN 1 ELSE 0 END), 0)"
        query += " FROM trigger_buckets"
        if self.dsn is not None:
            conn = await asyncpg.connect(self.dsn)
            try:
                row = await conn.fetchrow(query)
            finally:
                await conn.close()
            total, proactive_rows = (row[0], row[1]) if row is not None else (0, 0)
        else:
            total, proactive_rows = await asyncio.to_thread(self._sqlite_windows, query)
        return {"rows": int(total), "proactive": int(proactive_rows)}

    def _sqlite_windows(self, query: str) -> tuple[int, int]:
        if self.sqlite_path is None or not self.sqlite_path.exists():
            return 0, 0
        conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute(query).fetchone()
        except sqlite3.OperationalError:  # no table yet
            return 0, 0
        finally:
            conn.close()
        return int(row[0]), int(row[1])


# --- the processes ------------------------------------------------------------------------


@dataclass
class Deployment:
    """nats-server, and the api, worker and sla processes beside it."""

    nats: EmbeddedNats
    root: Path
    env: dict[str, str]
    api_url: str = ""
    worker_url: str = ""
    started: dict[str, tuple[subprocess.Popen[bytes], Path]] = field(default_factory=dict)

    def start(self, role: str, home_name: str, *options: str) -> str:
        """`tripwire serve ROLE` in root/home_name; its URL. The worker logs at INFO, to
        tell when it loaded the automations."""
        port, home = free_port(), self.root / home_name
        env = self.env | ({"TRIPWIRE_LOG_LEVEL": "INFO"} if role == "worker" else {})
        self.started[role] = (harness.serve(role, port, home, env, *options), home)
        return f"http://127.0.0.1:{port}"

    async def healthy(self, role: str, url: str, store_consumer: bool = False) -> None:
        process, home = self.started[role]
        async with httpx.AsyncClient(base_url=url, timeout=harness.REQUEST_TIMEOUT) as client:
            await harness.wait_healthy(client, process, home, HEALTH_TIMEOUT, store_consumer)

    def stop(self, role: str) -> None:
        process, home = self.started.pop(role)
        harness.stop_engine(process, home)

    def stop_all(self) -> None:
        for role in reversed(list(self.started)):
            self.stop(role)

    def pid(self, role: str) -> int | None:
        if role == "nats":
            return harness.nats_pid(self.nats.store_dir)
        return self.started[role][0].pid if role in self.started else None

    def worker_log(self) -> str:
        _, home = self.started["worker"]
        return (home / "engine.log").read_text(errors="replace")


async def wait_loaded(deployment: Deployment, count: int) -> float:
    """Until the worker logs that it loaded `count` automations; the seconds it took."""
    started = time.monotonic()
    needle = f"loaded {count} automations"
    while time.monotonic() - started < LOAD_TIMEOUT:
        if needle in deployment.worker_log():
            return time.monotonic() - started
        process, home = deployment.started["worker"]
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{harness.engine_log_tail(home)}")
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the worker did not log '{needle}' within {LOAD_TIMEOUT:.0f}s")


async def wait_windows(database: Database, expected: int, started: float) -> dict[str, int]:
    """Poll trigger_buckets until it holds `expected` rows, stalls or times out."""
    found: dict[str, int] = {}

    async def rows() -> int:
        found.update(await database.windows())
        return found["rows"]

    await harness.wait_counted(
        rows, expected, started, "windows", timeout=WINDOWS_TIMEOUT, stall=WINDOWS_STALL
    )
    return found


async def wait_drained(client: httpx.AsyncClient) -> None:
    """Until the store consumer's lag is 0 (the engine's own events too), or 60 s."""
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            if await scale.lag(client) == 0:
                return
        await asyncio.sleep(0.25)
    log("the store consumer's lag did not reach 0")


# --- the run ------------------------------------------------------------------------------


@dataclass
class Measured:
    """What the run measured."""

    worker: dict[str, dict[str, Any]] = field(default_factory=dict)
    others: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    peak_reset: bool = True
    apply_seconds: float = 0.0
    load_seconds: float = 0.0
    tally: harness.BatchLoad = field(default_factory=harness.BatchLoad)
    post_seconds: float = 0.0
    windows_seconds: float = 0.0
    windows: dict[str, int] = field(default_factory=dict)
    windows_after_restart: dict[str, int] = field(default_factory=dict)
    restart_seconds: float = 0.0


async def phase(deployment: Deployment, measured: Measured, name: str) -> None:
    """Read the worker's memory once settled, and the others' as they are."""
    pid = deployment.pid("worker")
    assert pid is not None
    found = await settled(pid)
    measured.worker[name] = found
    measured.others[name] = {
        role: status_mb(other)
        for role in ("api", "sla", "nats")
        if (other := deployment.pid(role)) is not None
    }
    log(
        f"{name}: worker RSS {found.get('rss_mb')} MiB settled, "
        f"peak {found.get('peak_rss_mb')} MiB (anon {found.get('anon_mb')} MiB)"
    )


def begin_phase(deployment: Deployment, measured: Measured) -> None:
    """Reset the worker's peak, so that the next reading's is the phase's own."""
    pid = deployment.pid("worker")
    if pid is not None:
        measured.peak_reset = reset_peak(pid) and measured.peak_reset


async def measure(
    deployment: Deployment, database: Database, definitions: Path, automations: int,
    windows: int, batch: int,
) -> Measured:  # fmt: skip
    measured = Measured()
    deployment.api_url = deployment.start("api", "api")
    await deployment.healthy("api", deployment.api_url)  # the database migrated
    deployment.worker_url = deployment.start("worker", "worker", "--no-actions")
    sla_url = deployment.start("sla", "sla")
    await asyncio.gather(
        deployment.healthy("worker", deployment.worker_url, store_consumer=True),
        deployment.healthy("sla", sla_url),
    )
    await phase(deployment, measured, "started")

    log(f"applying {automations:,} automations")
    begin_phase(deployment, measured)
    started = time.monotonic()
    await asyncio.to_thread(
        harness.apply_automations, deployment.api_url, definitions, deployment.root
    )
    measured.apply_seconds = time.monotonic() - started
    measured.load_seconds = await wait_loaded(deployment, automations)
    log(f"applied in {measured.apply_seconds:.1f}s; the worker loaded them")
    await phase(deployment, measured, "automations")

    pool, sizes = batches(windows, automations, batch)
    log(f"opening {windows:,} windows: {len(pool):,} POSTs of {batch} events")
    begin_phase(deployment, measured)
    async with (
        harness.load_client(deployment.api_url, connections=16) as api,
        httpx.AsyncClient(base_url=deployment.api_url, timeout=harness.REQUEST_TIMEOUT) as poller,
    ):
        started = time.monotonic()
        await sla.post_all(api, measured.tally, pool, sizes, CONCURRENCY, prepare=triggers.stamp)
        measured.post_seconds = time.monotonic() - started
        log(f"{measured.tally.accepted:,} events accepted in {measured.post_seconds:.1f}s")
        measured.windows = await wait_windows(database, windows, started)
        measured.windows_seconds = time.monotonic() - started
        await wait_drained(poller)
    log(f"{measured.windows['rows']:,} windows in {measured.windows_seconds:.1f}s")
    await phase(deployment, measured, "windows")

    stopping = time.monotonic()
    await asyncio.to_thread(deployment.stop, "worker")
    log(f"worker stopped in {time.monotonic() - stopping:.1f}s; starting it again")
    started = time.monotonic()
    deployment.worker_url = deployment.start("worker", "worker-restarted", "--no-actions")
    await deployment.healthy("worker", deployment.worker_url, store_consumer=True)
    await wait_loaded(deployment, automations)
    measured.restart_seconds = time.monotonic() - started
    await phase(deployment, measured, "restarted")
    measured.windows_after_restart = await database.windows()
    return measured


async def _prepare_database(postgres: str | None, root: Path) -> Database:
    if postgres is None:
        path = root / "tripwire.db"
        return Database(f"sqlite:///{path}", sqlite_path=path)
    dsn = await scale.create_database(scale._asyncpg_dsn(postgres))
    return Database(dsn.replace("postgresql://", "postgresql+asyncpg://"), dsn=dsn)


async def _deploy_and_measure(
    postgres: str | None, root: Path, definitions: Path, automations: int, windows: int,
    batch: int,
) -> tuple[Measured, Database]:  # fmt: skip
    database = await _prepare_database(postgres, root)
    nats_server = EmbeddedNats(root / "nats")
    env = {
        "TRIPWIRE_NATS_URL": nats_server.url,
        "TRIPWIRE_DATABASE_URL": database.url,
        "TRIPWIRE_LOG_LEVEL": "WARNING",
    }
    deployment = Deployment(nats_server, root, env)
    try:
        await nats_server.astart()
        log(f"nats-server on {nats_server.url}; {database.dialect}; home {root}")
        measured = await measure(deployment, database, definitions, automations, windows, batch)
        return measured, database
    finally:
        await asyncio.to_thread(deployment.stop_all)
        nats_server.stop()
        if postgres is not None and database.dsn is not None:
            await scale.drop_database(scale._asyncpg_dsn(postgres), database.dsn)


def _peak(measured: Measured) -> float | None:
    peaks = [
        value
        for reading in measured.worker.values()
        for value in (reading.get("peak_rss_mb"), reading.get("rss_mb"))
        if value is not None
    ]
    return max(peaks, default=None)


def run(
    automations: int = 1000,
    windows: int = 100_000,
    batch: int = 500,
    postgres: str | None = None,
) -> dict[str, Any]:
    """Start the processes, apply the automations, open the windows; the result object."""
    if automations < 1 or windows < 1 or batch < 1:
        raise ValueError("--automations, --windows and --batch must be positive")
    benchmarked = triggers.revision()  # before the run: the checkout may change while it runs
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-memory-") as tmp:
        root = Path(tmp)
        definitions = write_automations(root / "automations", automations)
        measured, database = asyncio.run(
            _deploy_and_measure(postgres, root, definitions, automations, windows, batch)
        )
    peak = _peak(measured)
    return {
        "benchmark": "memory",
        "machine": harness.machine(with_cpu_model=True),
        "revision": benchmarked,
        "parameters": {
            "automations": automations,
            "windows": windows,
            "batch": batch,
            "concurrency": CONCURRENCY,
            "within": WITHIN,
            "database": database.dialect,
            "store_batch_size": Settings.model_fields["store_batch_size"].default,
            "processes": "nats-server, serve api, serve worker --no-actions, serve sla",
        },
        "windows": {
            "expected": windows,
            "rows": measured.windows.get("rows"),
            "proactive": measured.windows.get("proactive"),
            "rows_after_restart": measured.windows_after_restart.get("rows"),
        },
        "load": {
            "accepted": measured.tally.accepted,
            "post_seconds": round(measured.post_seconds, 2),
            # From the first POST until trigger_buckets held every window.
            "windows_seconds": round(measured.windows_seconds, 2),
            "windows_per_s": round(measured.windows.get("rows", 0) / measured.windows_seconds, 1)
            if measured.windows_seconds
            else None,
            "errors": dict(measured.tally.errors),
        },
        "apply_seconds": round(measured.apply_seconds, 2),
        # From `tripwire apply` returning to the worker's log line (it polls every 0.5 s).
        "worker_load_seconds": round(measured.load_seconds, 2),
        "restart_seconds": round(measured.restart_seconds, 2),
        # The worker process, per phase: settled RSS, peak since the phase began.
        "worker_rss_mb": measured.worker,
        "peak_reset": measured.peak_reset,
        # The api, sla and nats-server processes at each phase's end (VmHWM: since start).
        "other_rss_mb": measured.others,
        "nats_rss_mb": measured.others.get("windows", {}).get("nats"),
        "target_mb": TARGET_MB,
        "worker_peak_rss_mb": peak,
        "met": peak is not None and peak <= TARGET_MB,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m bench.memory`."""
    parser = harness.argument_parser("bench.memory", __doc__)
    parser.add_argument("--automations", type=int, default=1000, help="automations (default 1000)")
    parser.add_argument(
        "--windows", type=int, default=100_000, help="open windows, one key each (100000)"
    )
    parser.add_argument("--batch", type=int, default=500, help="events per POST (500)")
    parser.add_argument(
        "--postgres",
        default=None,
        help="admin DSN: run on PostgreSQL, in a database created and dropped for the run "
        "(default: SQLite)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; 0 when every window was opened and the target met."""
    args = parse_args(argv)
    result = harness.run_printed(
        lambda: run(args.automations, args.windows, args.batch, args.postgres)
    )
    if isinstance(result, int):
        return result
    opened = result["windows"]["rows"] == args.windows
    return 0 if opened and result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
