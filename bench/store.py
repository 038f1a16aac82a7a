"""Store benchmark: the API's and the dashboard's queries on a large PostgreSQL store.

    python -m bench.store [--events 10000000] [--days 35] [--runs 20] [--layout partitioned]
                          [--postgres URL] [--reuse NAME] [--keep]

It creates a database (`tw_bench_store_<hex>`, through the admin DSN `--postgres`, else
TRIPWIRE_BENCH_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test) and brings
it to the engine's schema: `--layout partitioned` is the current one (day partitions),
`plain` the one before it (one table, rows deleted by retention), for comparison.

Seeding runs in SQL (`generate_series`), a day per statement, not through the API:
`--events` Prefect flow-run state events spread evenly over `--days` days up to now. Each
run of a flow has four events (Scheduled, Pending, Running, then Completed, or Failed one
time in twenty) about its flow run, with its flow (200), deployment (400) and work queue
(20) as related resources; the bodies are the shape and size of Prefect's. Ids are
UUIDv7 of the event's time. The per-minute counts are filled as the worker would. Then
VACUUM ANALYZE, as autovacuum would have done on a store that grew over weeks.

Each query is run 3 times to warm up, then `--runs` times, through the engine's own
`EventStore`; `ms` has p50, p99 and max. Last, retention: the oldest day is dropped (or
deleted, on the plain layout) with `EventStore.sweep`, timed once.

With `--layout plain --migrate` the queries are timed on the plain layout, the store is
migrated to day partitions (revision 0009, timed: `migration`), and timed again.

`--reuse NAME` times an existing seeded database again; `--keep` leaves the database in
place at the end (its name is in the result). Progress goes to stderr; one JSON object
with the results goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.harness import argument_parser, log, machine, percentiles, run_printed
from events import partitions
from events.filters import EventFilter
from events.store import Countable, EventStore
from tripwire.database import create_engine, migrate

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
FLOWS, DEPLOYMENTS, QUEUES = 200, 400, 20
PLAIN = "0008_metric_triggers"  # the schema before the day partitions

# One day's events. `$1` the day's start, `$2` its events, `$3` the day's number (so
# names differ between days). Event i of the day is state i % 4 of run i / 4.
EVENTS = """
INSERT INTO events (id, occurred, event, resource_id, resource, received, recorded, follows, body)
SELECT id, occurred, name, run, resource, occurred, occurred, NULL,
       json_build_object(
         'occurred', occurred, 'event', name, 'resource', resource, 'related', related,
         'payload', json_build_object(
           'intended', json_build_object('from', 'PENDING', 'to', state_type),
           'initial_state', json_build_object('type', 'PENDING', 'name', 'Pending'),
           'validated_state', json_build_object(
             'type', state_type, 'name', state_name, 'message', '',
             'state_details', json_build_object('flow_run_id', run_uuid, 'pause_reschedule',
               false, 'untrackable_result', false, 'retriable', false))),
         'id', id, 'follows', NULL, 'received', occurred)::text
FROM (
  SELECT *, jsonb_build_object(
           'prefect.resource.id', run, 'prefect.resource.name', 'run-' || left(run_uuid, 8),
           'prefect.state-message', '', 'prefect.state-type', state_type,
           'prefect.state-name', state_name, 'prefect.state-timestamp', occurred,
           'prefect.run-count', '1') AS resource,
         jsonb_build_array(
           jsonb_build_object('prefect.resource.id', 'prefect.flow.' || flow,
             'prefect.resource.role', 'flow', 'prefect.resource.name', 'flow-' || flow_n),
           jsonb_build_object('prefect.resource.id', 'prefect.deployment.' || deployment,
             'prefect.resource.role', 'deployment',
             'prefect.resource.name', 'deployment-' || deployment_n),
           jsonb_build_object('prefect.resource.id', 'prefect.work-queue.' || queue,
             'prefect.resource.role', 'work-queue',
             'prefect.resource.name', 'queue-' || queue_n)) AS related
  FROM (
    SELECT *, 'prefect.flow-run.' || state_name AS name, 'prefect.flow-run.' || run_uuid AS run,
           substr(ms, 1, 8) || '-' || substr(ms, 9, 4) || '-7' || substr(h, 1, 3) || '-8'
           || substr(h, 4, 3) || '-' || substr(h, 7, 12) AS id
    FROM (
      SELECT occurred, lpad(to_hex((extract(epoch FROM occurred) * 1000)::bigint), 12, '0') AS ms,
             md5($3 || '.' || i) AS h, run_uuid::text AS run_uuid,
             flow_n, deployment_n, queue_n,
             md5('flow' || flow_n)::uuid::text AS flow,
             md5('deployment' || deployment_n)::uuid::text AS deployment,
             md5('queue' || queue_n)::uuid::text AS queue,
             CASE i % 4 WHEN 0 THEN 'SCHEDULED' WHEN 1 THEN 'PENDING' WHEN 2 THEN 'RUNNING'
               ELSE CASE WHEN (i / 4) % 20 = 0 THEN 'FAILED' ELSE 'COMPLETED' END END
               AS state_type,
             CASE i % 4 WHEN 0 THEN 'Scheduled' WHEN 1 THEN 'Pending' WHEN 2 THEN 'Running'
               ELSE CASE WHEN (i / 4) % 20 = 0 THEN 'Failed' ELSE 'Completed' END END
               AS state_name
      FROM (
        SELECT i, $1::timestamptz + make_interval(secs => i * 86400.0 / $2) AS occurred,
               md5($3 || '.run.' || (i / 4))::uuid AS run_uuid,
               (i / 4) % 200 AS flow_n, (i / 4) % 400 AS deployment_n, (i / 4) % 20 AS queue_n
        FROM generate_series(0, $2 - 1) AS i
      ) base
    ) named
  ) shaped
) built
"""
RELATED = """
INSERT INTO event_resources (event_id, position, occurred, resource_id, resource_role, resource)
SELECT e.id, r.position - 1, e.occurred, r.item ->> 'prefect.resource.id',
       r.item ->> 'prefect.resource.role', r.item
FROM events e, jsonb_array_elements((e.body::jsonb) -> 'related') WITH ORDINALITY
     AS r(item, position)
WHERE e.occurred >= $1 AND e.occurred < $1::timestamptz + interval '1 day'
"""
IDS = """
INSERT INTO event_ids (id, occurred)
SELECT id, occurred FROM events
WHERE occurred >= $1 AND occurred < $1::timestamptz + interval '1 day'
"""
COUNTS = """
INSERT INTO event_counts (minute, event, shard, count)
SELECT floor(extract(epoch FROM occurred) / 60)::int, event, 0, count(*) FROM events
WHERE occurred >= $1 AND occurred < $1::timestamptz + interval '1 day' GROUP BY 1, 2
"""


def admin_dsn(url: str | None) -> str:
    """The admin connection, as asyncpg takes it."""
    dsn = url or os.environ.get("TRIPWIRE_BENCH_POSTGRES_URL") or ADMIN
    return dsn.replace("postgresql+asyncpg://", "postgresql://")


def database_dsn(admin: str, name: str) -> str:
    """The DSN of database `name` on the admin connection's server."""
    return f"{admin.rsplit('/', 1)[0]}/{name}"


async def seed(dsn: str, events: int, days: int, now: datetime, partitioned: bool) -> float:
    """Fill the store, a day per statement, two days at once; returns the seconds taken."""
    per_day = events // days
    first = datetime.combine((now - timedelta(days=days - 1)).date(), datetime.min.time(), UTC)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(days):
        queue.put_nowait(n)
    started = time.perf_counter()

    async def work() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            while not queue.empty():
                n = queue.get_nowait()
                start = first + timedelta(days=n)
                async with conn.transaction():
                    await conn.execute(EVENTS, start, per_day, str(n))
                    await conn.execute(RELATED, start)
                    if partitioned:
                        await conn.execute(IDS, start)
                    await conn.execute(COUNTS, start)
                log(f"seeded day {n + 1}/{days} ({time.perf_counter() - started:.0f} s)")
        finally:
            await conn.close()

    await asyncio.gather(work(), work())
    conn = await asyncpg.connect(dsn)
    try:
        log("vacuum analyze")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> dict[str, Any]:
    """p50/p99/max in ms of `runs` calls, after 3 to warm up."""
    for _ in range(3):
        await call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - started) * 1000)
    shown: Any = result
    if hasattr(result, "total"):
        shown = {"events": len(result.events), "total": result.total}
    elif isinstance(result, list):
        shown = {"rows": len(result)}
    elif not isinstance(result, int | None):
        shown = type(result).__name__
    return {"ms": percentiles(times, (50, 99)), "result": shown}


def spec(**fields: Any) -> EventFilter:
    return EventFilter.model_validate(fields)


async def queries(store: EventStore, db: AsyncEngine, now: datetime, runs: int) -> dict[str, Any]:
    """Time the API's and the dashboard's reads."""
    day = {"since": (now - timedelta(days=1)).isoformat(), "until": now.isoformat()}
    week = {"since": (now - timedelta(days=7)).isoformat(), "until": now.isoformat()}
    hour = {"since": (now - timedelta(hours=1)).isoformat(), "until": now.isoformat()}
    async with db.connect() as conn:
        flow = await conn.exec_driver_sql(
            "SELECT resource_id FROM event_resources WHERE resource_role = 'flow' "
            "AND occurred > now() - interval '1 hour' LIMIT 1"
        )
        flow_id = flow.scalar_one()
        run = await conn.exec_driver_sql(
            "SELECT id, resource_id FROM events WHERE occurred > now() - interval '2 days' "
            "AND occurred < now() - interval '1 day' LIMIT 1"
        )
        sample = list(run.one())
        event_id, run_id = str(sample[0]), str(sample[1])
    failed = {"name": ["prefect.flow-run.Failed"]}
    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        # POST /api/events/filter as sent with no filter: the newest 50 and the total.
        "filter_all_newest_50_with_total": lambda: store.read(EventFilter()),
        "filter_last_24h_newest_50_with_total": lambda: store.read(spec(occurred=day)),
        "filter_last_24h_failed_with_total": lambda: store.read(spec(occurred=day, event=failed)),
        "filter_last_7d_prefix_with_total": lambda: store.read(
            spec(occurred=week, event={"prefix": ["prefect.flow-run."]})
        ),
        "filter_related_flow_last_24h_with_total": lambda: store.read(
            spec(occurred=day, related={"id": [flow_id]})
        ),
        "filter_related_flow_all_time_page_only": lambda: store.read(
            spec(related={"id": [flow_id]}), count=False
        ),
        "filter_any_resource_flow_last_24h_with_total": lambda: store.read(
            spec(occurred=day, any_resource={"id": [flow_id]})
        ),
        "filter_resource_one_run_all_time": lambda: store.read(spec(resource={"id": [run_id]})),
        "filter_label_failed_last_24h": lambda: store.read(
            spec(occurred=day, resource={"labels": {"prefect.state-type": "FAILED"}})
        ),
        # The dashboard's events page: a page, no total.
        "dashboard_events_last_24h_page": lambda: store.read(spec(occurred=day), 100, count=False),
        "dashboard_counts_over_time_24h": lambda: store.counts_over_time(
            now - timedelta(days=1), now, timedelta(minutes=15)
        ),
        # An SLA's lookback: a page of 500 of the names it expects in the last hour.
        "sla_lookback_last_hour_500": lambda: store.read(
            spec(occurred=hour, event={"prefix": ["prefect.flow-run."]}), 500
        ),
        "get_by_id": lambda: store.get(event_id),
        "count_all": lambda: store.count(),
        "count_last_24h": lambda: store.count(spec(occurred=day)),
        "count_related_flow_last_7d": lambda: store.count(
            spec(occurred=week, related={"id": [flow_id]})
        ),
        "count_by_day_all": lambda: store.count_by(Countable.day, EventFilter()),
        "count_by_event_last_24h": lambda: store.count_by(Countable.event, spec(occurred=day)),
        "count_by_hour_last_24h_failed": lambda: store.count_by(
            Countable.hour, spec(occurred=day, event=failed)
        ),
    }
    found: dict[str, Any] = {}
    for name, call in cases.items():
        found[name] = await timed(call, runs)
        log(f"{name}: {found[name]['ms']}")
    return found


def seeded_days(now: datetime, days: int) -> list[date]:
    """The days the seed fills, and those the engine makes ahead."""
    return partitions.days_between(
        (now - timedelta(days=days - 1)).date(), now.date() + timedelta(days=partitions.AHEAD)
    )


async def partitioned_store(db: AsyncEngine) -> bool:
    async with db.connect() as conn:
        return await partitions.partitioned(conn)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    admin = admin_dsn(args.postgres)
    name = args.reuse or f"tw_bench_store_{uuid.uuid4().hex[:8]}"
    dsn = database_dsn(admin, name)
    now = datetime.now(UTC)
    result: dict[str, Any] = {
        "benchmark": "store",
        "machine": machine(with_cpu_model=True),
        "parameters": {"events": args.events, "days": args.days, "runs": args.runs},
        "layout": args.layout,
        "database": name,
    }
    if not args.reuse:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
    db = create_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    store = EventStore(db)
    try:
        if not args.reuse:
            partitioned = args.layout == "partitioned"
            await migrate(db, "head" if partitioned else PLAIN)
            if partitioned:
                await partitions.ensure(db, seeded_days(now, args.days))
            log(f"seeding {args.events:,} events over {args.days} days into {name}")
            result["seed_seconds"] = round(
                await seed(dsn, args.events, args.days, now, partitioned), 1
            )
        conn = await asyncpg.connect(dsn)
        try:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
            result["stored_events"] = await conn.fetchval("SELECT sum(count) FROM event_counts")
        finally:
            await conn.close()
        result["database_gb"] = round(size / 1e9, 2)
        if args.migrate:
            if await partitioned_store(db):
                raise ValueError("--migrate takes a store of the plain layout")
            result["queries_plain"] = await queries(store, db, now, args.runs)
            log("migrating to day partitions")
            started = time.perf_counter()
            await migrate(db)
            took = time.perf_counter() - started
            stored = max(int(result["stored_events"] or 0), 1)
            result["migration"] = {
                "seconds": round(took, 1),
                "seconds_per_million_events": round(took / stored * 1e6, 1),
            }
            log(f"migrated: {result['migration']}")
            store = EventStore(db)
        result["queries"] = await queries(store, db, now, args.runs)
        whole_days = await partitioned_store(db)
        async with db.connect() as conn:
            first = await conn.exec_driver_sql("SELECT min(occurred) FROM events")
            cut = partitions.bounds(first.scalar_one().astimezone(UTC).date())[1]
        started = time.perf_counter()
        removed = await store.sweep(cut)
        result["retention_one_day"] = {
            "seconds": round(time.perf_counter() - started, 2),
            "events_removed": removed,
            "how": "day partition dropped" if whole_days else "rows deleted",
        }
        log(f"retention: {result['retention_one_day']}")
    finally:
        await db.dispose()
        if not args.keep:
            conn = await asyncpg.connect(admin)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
            result["database"] = None
    return result


def main() -> None:
    parser = argument_parser("bench.store", __doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--layout", choices=("partitioned", "plain"), default="partitioned")
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--reuse", default=None, help="time this seeded database again")
    parser.add_argument("--keep", action="store_true", help="leave the database in place")
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="with --layout plain: time the queries, migrate to day partitions, time again",
    )
    args = parser.parse_args()
    run_printed(lambda: asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
