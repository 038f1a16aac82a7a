"""Metric trigger benchmark: what keeping per-run samples costs as events are stored, what a
tick costs, and what reading the stored events at each tick would cost instead.

    python -m bench.metrics [--runs 10000] [--keys 100] [--triggers 1] [--batch 500]

In-process, on a fresh SQLite file, through the worker's own parts (the event store and
the evaluator, as the pipeline calls them): `--runs` flow runs (Pending, Running,
Completed or Failed: three events each) of `--keys` deployments, spread over one day of
event time, stored in `--batch`-event batches. Each of `--triggers` metric triggers
measures duration per deployment (for_each on the related deployment) over a range of one
day, so at the end every run is in range.

Reported: CPU per stored event with the metric triggers loaded and with none
(`feed_us_per_event`, the difference); the timer's pass at the end (`tick_ms`, median of
10 ticks); and the alternative design, reading the day's flow-run events from the store
and computing the same averages in Python (`query_ms`, median of 3). One JSON object goes
to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from events.model import Event
from events.store import EventStore
from triggers.automation import Automation
from triggers.evaluator import Evaluator, Subjects
from triggers.identity import stamped
from triggers.metrics import tick_at
from tripwire.database import create_engine, migrate

DAY = timedelta(days=1)


def automation(index: int) -> Automation:
    return stamped(
        Automation.model_validate(
            {
                "name": f"slow-{index}",
                "trigger": {
                    "type": "metric",
                    "match": {"prefect.resource.id": "prefect.flow-run.*"},
                    "for_each": ["related:deployment:prefect.resource.id"],
                    "metric": {
                        "name": "duration",
                        "threshold": 30 + index,
                        "operator": ">",
                        "range": "1d",
                        "firing_for": "5m",
                    },
                },
            }
        )
    )


def events(runs: int, keys: int, end: datetime) -> list[bytes]:
    found: list[tuple[datetime, bytes]] = []
    step = DAY / runs
    for index in range(runs):
        start = end - DAY + index * step
        related = [
            {
                "prefect.resource.id": f"prefect.deployment.d{index % keys}",
                "prefect.resource.role": "deployment",
            }
        ]
        ending = "Failed" if index % 7 == 0 else "Completed"
        for state, at in (
            ("Pending", start),
            ("Running", start + timedelta(seconds=1)),
            (ending, start + timedelta(seconds=1 + index % 60)),
        ):
            event = Event(
                occurred=at,
                event=f"prefect.flow-run.{state}",
                resource={"prefect.resource.id": f"prefect.flow-run.r{index}"},
                related=related,
            ).receive()
            found.append((at, orjson.dumps(event.model_dump(mode="json"))))
    return [body for _, body in sorted(found, key=lambda pair: pair[0])]


async def store_all(
    folder: Path, name: str, loaded: list[Automation], bodies: list[bytes], batch: int
) -> tuple[float, Any]:
    db = create_engine(f"sqlite+aiosqlite:///{folder / name}")
    await migrate(db)
    store = EventStore(db)
    evaluator = Evaluator(Subjects("b.events", "b.actions"))
    evaluator.load(loaded)
    started = time.process_time()
    for first in range(0, len(bodies), batch):
        async with db.begin() as conn:
            documents = await store.insert(conn, bodies[first : first + batch])
            await evaluator.evaluate(conn, documents)
    return time.process_time() - started, (db, evaluator)


async def query_instead(db: Any, now: datetime) -> dict[str, float]:
    """The simple design: the day's flow-run events from the store, averaged per key."""
    rows = await db_rows(db, now)
    running: dict[str, datetime] = {}
    totals: dict[str, list[float]] = {}
    for (body,) in rows:
        document = orjson.loads(body)
        run = document["resource"]["prefect.resource.id"]
        occurred = datetime.fromisoformat(document["occurred"])
        state = document["event"].rsplit(".", 1)[1]
        if state == "Running":
            running[run] = occurred
        elif state in ("Completed", "Failed") and run in running:
            key = document["related"][0]["prefect.resource.id"]
            seconds = (occurred - running[run]).total_seconds()
            totals.setdefault(key, []).append(seconds)
    return {key: sum(values) / len(values) for key, values in totals.items()}


async def db_rows(db: Any, now: datetime) -> list[Any]:
    async with db.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT body FROM events WHERE event LIKE 'prefect.flow-run.%' "
                "AND occurred >= :since ORDER BY occurred"
            ),
            {"since": (now - DAY).strftime("%Y-%m-%d %H:%M:%S.%f")},
        )
        return list(result.all())


async def main(args: argparse.Namespace) -> dict[str, Any]:
    end = tick_at(datetime.now(UTC))
    bodies = events(args.runs, args.keys, end)
    loaded = [automation(i) for i in range(args.triggers)]
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-metrics-") as folder:
        base = Path(folder)
        without, (plain, _) = await store_all(base, "plain.db", [], bodies, args.batch)
        await plain.dispose()
        with_metrics, (db, evaluator) = await store_all(
            base, "metrics.db", loaded, bodies, args.batch
        )
        ticks = []
        for index in range(10):
            at = end + timedelta(seconds=10 * (index + 1))
            started = time.perf_counter()
            async with db.begin() as conn:
                await evaluator.evaluate_due(conn, at)
            ticks.append(time.perf_counter() - started)
        queries = []
        for _ in range(3):
            started = time.perf_counter()
            averages = await query_instead(db, end)
            queries.append(time.perf_counter() - started)
        await db.dispose()
    count = len(bodies)
    return {
        "runs": args.runs,
        "events": count,
        "keys": args.keys,
        "triggers": args.triggers,
        "store_us_per_event_without": round(without / count * 1e6, 1),
        "store_us_per_event_with": round(with_metrics / count * 1e6, 1),
        "feed_us_per_event": round((with_metrics - without) / count * 1e6, 1),
        "tick_ms": round(statistics.median(ticks) * 1000, 2),
        "query_ms": round(statistics.median(queries) * 1000, 1),
        "query_keys": len(averages),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--triggers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=500)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
