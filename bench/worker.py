"""`python -m bench.worker`: the worker's batch handler alone, in-process, CPU per event.

The end-to-end benchmark (`python -m bench.triggers`) depends on the host's speed at the
hour, and on this VM that moves by a third from run to run. This one times only what the
worker does with a batch: `Pipeline.handle` (store, evaluate, commit, publish what fired) on
a real SQLite file and a real nats-server, with bench.triggers' workload and automations. It
leaves out pulling from JetStream and acking. For each batch size it reports wall and CPU
time per event and the batch times, after a prefill, so that the windows and indexes hold
data. Batch sizes vary by `--jitter` around each size, as under a steady load.

Compare code by running it alternately on both checkouts in one sitting.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import harness
from bench.triggers import Workload, stamp, write_automations
from events.bus import Bus, Names
from events.embedded import EmbeddedNats
from events.parsing import encode, receive_events_json
from events.store import EventStore
from sla.store import SLAStore
from triggers.repository import AutomationStore
from tripwire.database import checkpoint_forever, create_engine, migrate
from tripwire.definitions import load_paths
from tripwire.engine import build_pipeline, settle_heap
from tripwire.settings import Settings

PREFILL_BATCH = 2000


def _bodies(workload: Workload, count: int) -> list[bytes]:
    """Events as the store consumer receives them: validated, stamped, encoded."""
    return [body for _, body in encode(receive_events_json(stamp(workload.batch(count))))]


async def _measure(
    home: Path, size: int, jitter: int, events: int, prefill: int, total: int, candidates: int
) -> dict[str, Any]:
    nats = EmbeddedNats(home / "nats")
    await nats.astart()
    bus = Bus(nats.url, Names("bench"))
    db = create_engine(f"sqlite:///{home / 'tripwire.db'}")
    checkpoints = asyncio.create_task(checkpoint_forever(home / "tripwire.db"))
    try:
        await bus.connect()
        await migrate(db)
        definitions = write_automations(home / "automations", total, candidates)
        automations = AutomationStore(db)
        await automations.apply(load_paths([definitions]).automations)
        pipeline = build_pipeline(Settings(), db, EventStore(db), bus, automations, SLAStore(db))
        await pipeline.reload(force=True)
        settle_heap()
        workload = Workload()
        for _ in range(prefill // PREFILL_BATCH):
            await pipeline.handle(_bodies(workload, PREFILL_BATCH))
        sizes = random.Random(size)
        batches: list[list[bytes]] = []
        left = events
        while left > 0:
            count = min(left, max(1, size + sizes.randint(-jitter, jitter)))
            batches.append(_bodies(workload, count))
            left -= count
        took: list[float] = []
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            started = time.perf_counter()
            await pipeline.handle(batch)
            took.append((time.perf_counter() - started) * 1000)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        checkpoints.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checkpoints
        await bus.close()
        await db.dispose()
        await asyncio.to_thread(nats.stop)
    return {
        "batch": size,
        "jitter": jitter,
        "events": events,
        "batches": len(batches),
        "us_per_event": round(wall / events * 1e6, 1),
        "cpu_us_per_event": round(cpu / events * 1e6, 1),
        "events_per_s": round(events / wall),
        "batch_ms": harness.percentiles(took, (50, 99)),
    }


def run(
    sizes: Sequence[int], jitter: float, events: int, prefill: int, total: int, candidates: int
) -> dict[str, Any]:
    """Each batch size on a new database and nats-server; the result object."""
    results = []
    for size in sizes:
        spread = int(size * jitter)
        with tempfile.TemporaryDirectory(prefix="tripwire-bench-worker-") as tmp:
            harness.log(f"batches of {size} ± {spread}: {events:,} events after {prefill:,}")
            results.append(
                asyncio.run(_measure(Path(tmp), size, spread, events, prefill, total, candidates))
            )
    return {
        "benchmark": "worker",
        "machine": harness.machine(with_cpu_model=True),
        "parameters": {
            "automations": total,
            "candidates": candidates,
            "prefill": prefill,
            "events": events,
            "jitter": jitter,
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
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.batches.split(",") if part.strip()]
    if not sizes or min(sizes) < 1 or args.events < 1 or not 0 <= args.jitter < 1:
        parser.error("--batches must be positive sizes, --events positive, --jitter in [0, 1)")
    result = harness.run_printed(
        lambda: run(
            sizes, args.jitter, args.events, args.prefill, args.automations, args.candidates
        )
    )
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
