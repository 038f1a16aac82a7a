"""`python -m bench.worker`: the worker's batch handler alone, in-process, CPU per event.

The end-to-end benchmark (`python -m bench.triggers`) depends on the host's speed at the
hour, and on this VM that moves by a third from run to run. This one times only what the
worker does with a batch: `Pipeline.handle` (store, evaluate, commit, publish what fired) on
a real SQLite file and a real nats-server, with bench.triggers' workload and automations. It
leaves out pulling from JetStream and acking. For each batch size it reports wall and CPU
time per event and the batch times, after a prefill, so that the windows and indexes hold
data. Batch sizes vary by `--jitter` around each size, as under a steady load.

`--echo` hands what the pipeline published onto the events stream (its firings'
`tripwire.automation.triggered` events, and the alerts' `tripwire.alert.*` events) back in
the next batch, as the store consumer would pull them: without it those are published
and never stored, and the alerts, which are opened from stored firing events, stay
closed. `--alerts off` takes the alerts engine out of the pipeline (bench.alerts compares
the two). `--database-url` runs on a throwaway database of that PostgreSQL server instead
of a SQLite file.

Compare code by running it alternately on both checkouts in one sitting.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alerts.book import AlertBook
from bench import harness
from bench.scale import create_database, drop_database
from bench.triggers import Workload, stamp, write_automations
from events.bus import Bus, Names
from events.embedded import EmbeddedNats
from events.parsing import encode, receive_events_json
from events.store import EventStore
from sla.store import SLAStore
from triggers.pipeline import Companion, Pipeline
from triggers.repository import AutomationStore
from triggers.results import Result
from tripwire.database import checkpoint_forever, create_engine, migrate
from tripwire.definitions import load_paths
from tripwire.engine import build_pipeline, settle_heap
from tripwire.settings import Settings

PREFILL_BATCH = 2000


class EchoBus(Bus):
    """The bus, keeping a copy of what it published: the events, which the store consumer
    pulls back from the stream (`take_events`), and the action requests."""

    def __init__(self, url: str, names: Names) -> None:
        super().__init__(url, names)
        self.events: list[bytes] = []
        self.requests: list[bytes] = []

    async def publish(self, subject: str, messages: Sequence[tuple[UUID | str, bytes]]) -> None:
        await super().publish(subject, messages)
        kept = self.events if subject.startswith(self.names.events_subject) else self.requests
        kept.extend(body for _, body in messages)

    def take_events(self) -> list[bytes]:
        taken, self.events = self.events, []
        return taken


@contextlib.asynccontextmanager
async def database(home: Path, postgres: str | None) -> AsyncIterator[AsyncEngine]:
    """A migrated database: a new SQLite file in `home`, checkpointed as the engine does,
    or with `postgres` (a server's URL) a new database there, dropped afterwards."""
    if postgres is None:
        path = home / "tripwire.db"
        db = create_engine(f"sqlite:///{path}")
        checkpoints = asyncio.create_task(checkpoint_forever(path))
    else:
        admin = postgres.replace("postgresql+asyncpg://", "postgresql://")
        dsn = await create_database(admin)
        db = create_engine(dsn)
    try:
        await migrate(db)
        yield db
    finally:
        await db.dispose()
        if postgres is None:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
        else:
            await drop_database(admin, dsn)


def without_alerts(pipeline: Pipeline) -> None:
    """Alerts off: the pipeline without its alerts engine."""
    pipeline.companions = [c for c in pipeline.companions if not isinstance(c, AlertBook)]


class Timed:
    """A companion of the pipeline, with the CPU time its batches take: the alerts
    engine's own share of a run, beside what the extra events it publishes cost. Process
    time, so that SQLite's thread running its statements counts (and so would anything
    else that ran meanwhile: the batches here run one at a time)."""

    def __init__(self, companion: Companion) -> None:
        self.companion = companion
        self.cpu = 0.0  # evaluating stored batches
        self.due_cpu = 0.0  # timer passes

    async def reload(self) -> None:
        await self.companion.reload()

    async def evaluate(self, conn: AsyncConnection, documents: Sequence[dict[str, Any]]) -> Result:
        started = time.process_time()
        try:
            return await self.companion.evaluate(conn, documents)
        finally:
            self.cpu += time.process_time() - started

    async def evaluate_due(self, conn: AsyncConnection, now: datetime) -> Result:
        started = time.process_time()
        try:
            return await self.companion.evaluate_due(conn, now)
        finally:
            self.due_cpu += time.process_time() - started


def timed_alerts(pipeline: Pipeline) -> Timed | None:
    """The pipeline's alerts engine, timed (None when it has none)."""
    for index, companion in enumerate(pipeline.companions):
        if isinstance(companion, AlertBook):
            timed = pipeline.companions[index] = Timed(companion)
            return timed
    return None


def _bodies(workload: Workload, count: int) -> list[bytes]:
    """Events as the store consumer receives them: validated, stamped, encoded."""
    return [message.data for message in encode(receive_events_json(stamp(workload.batch(count))))]


async def _measure(
    home: Path, size: int, jitter: int, events: int, prefill: int, options: Options
) -> dict[str, Any]:
    nats = EmbeddedNats(home / "nats")
    await nats.astart()
    bus = EchoBus(nats.url, Names("bench"))

    def echoed(batch: list[bytes]) -> list[bytes]:
        """With `--echo`, the batch and what the pipeline published since the last one."""
        return batch + bus.take_events() if options.echo else batch

    try:
        async with database(home, options.database_url) as db:
            await bus.connect()
            definitions = write_automations(
                home / "automations", options.automations, options.candidates
            )
            automations = AutomationStore(db)
            await automations.apply(load_paths([definitions]).automations)
            pipeline = build_pipeline(
                Settings(), db, EventStore(db), bus, automations, SLAStore(db)
            )
            if not options.alerts:
                without_alerts(pipeline)
            alerts = timed_alerts(pipeline)
            await pipeline.reload(force=True)
            settle_heap()
            workload = Workload()
            for _ in range(prefill // PREFILL_BATCH):
                await pipeline.handle(echoed(_bodies(workload, PREFILL_BATCH)))
            sizes = random.Random(size)
            batches: list[list[bytes]] = []
            left = events
            while left > 0:
                count = min(left, max(1, size + sizes.randint(-jitter, jitter)))
                batches.append(_bodies(workload, count))
                left -= count
            took: list[float] = []
            handled = 0
            alerts_cpu = alerts.cpu if alerts is not None else 0.0
            wall, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                started = time.perf_counter()
                handing = echoed(batch)
                await pipeline.handle(handing)
                took.append((time.perf_counter() - started) * 1000)
                handled += len(handing)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            alerts_cpu = alerts.cpu - alerts_cpu if alerts is not None else 0.0
    finally:
        await bus.close()
        await asyncio.to_thread(nats.stop)
    return {
        "batch": size,
        "jitter": jitter,
        "events": events,
        "batches": len(batches),
        "echoed": handled - events,
        "us_per_event": round(wall / events * 1e6, 1),
        "cpu_us_per_event": round(cpu / events * 1e6, 1),
        "alerts_cpu_us_per_event": round(alerts_cpu / events * 1e6, 1),
        "events_per_s": round(events / wall),
        "batch_ms": harness.percentiles(took, (50, 99)),
    }


@dataclass(frozen=True)
class Options:
    """What every batch size runs with."""

    automations: int = 1000
    candidates: int = 100
    alerts: bool = True
    echo: bool = False
    database_url: str | None = None  # a PostgreSQL server; None: a SQLite file


def measure(
    size: int, jitter: float, events: int, prefill: int, options: Options
) -> dict[str, Any]:
    """One batch size on a new database and nats-server."""
    spread = int(size * jitter)
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-worker-") as tmp:
        harness.log(f"batches of {size} ± {spread}: {events:,} events after {prefill:,}")
        return asyncio.run(_measure(Path(tmp), size, spread, events, prefill, options))


def run(
    sizes: Sequence[int], jitter: float, events: int, prefill: int, options: Options
) -> dict[str, Any]:
    """Each batch size on a new database and nats-server; the result object."""
    results = [measure(size, jitter, events, prefill, options) for size in sizes]
    return {
        "benchmark": "worker",
        "machine": harness.machine(with_cpu_model=True),
        "parameters": {
            "automations": options.automations,
            "candidates": options.candidates,
            "prefill": prefill,
            "events": events,
            "jitter": jitter,
            "alerts": options.alerts,
            "echo": options.echo,
            "database": "sqlite" if options.database_url is None else "postgresql",
            "includes": "store, evaluate, commit, publish; not pulling from JetStream or acks",
        },
        "results": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.argument_parser("bench.worker", __doc__)
    parser.add_argument(
        "--batches", default="25,130,2000", help="batch sizes (default 25,130,2000)"
    )
    parser.add_argument("--jitter", type=float, default=0.4, help="± share of each size (0.4)")
    parser.add_argument("--events", type=int, default=10_000, help="timed events per size")
    parser.add_argument("--prefill", type=int, default=20_000, help="events stored first")
    parser.add_argument("--automations", type=int, default=1000, help="automations in all")
    parser.add_argument("--candidates", type=int, default=100, help="candidates among them")
    parser.add_argument(
        "--alerts", choices=("on", "off"), default="on", help="the alerts engine (on)"
    )
    parser.add_argument(
        "--echo", action="store_true", help="store what the pipeline publishes, in later batches"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test: "
        "a throwaway database there (default: a SQLite file)",
    )
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.batches.split(",") if part.strip()]
    if not sizes or min(sizes) < 1 or args.events < 1 or not 0 <= args.jitter < 1:
        parser.error("--batches must be positive sizes, --events positive, --jitter in [0, 1)")
    options = Options(
        args.automations, args.candidates, args.alerts == "on", args.echo, args.database_url
    )
    result = harness.run_printed(
        lambda: run(sizes, args.jitter, args.events, args.prefill, options)
    )
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
