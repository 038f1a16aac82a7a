"""Dashboard benchmark: server time per page of the web dashboard (/ui/) on real volumes.

    python -m bench.ui [--events 1000000] [--automations 1000] [--requests 50]
                       [--reuse PATH | --database-url URL] [--port P]

Seeding. The schema is made as the engine makes it (its migrations), then filled through
the engine's own stores and tables, in large transactions, not through the API:

- `--events` events spread evenly over the last 7 days (the default retention), each a
  valid ReceivedEvent (validated, then stored as the engine encodes it) with a payload:
  ~70% `prefect.flow-run.{Late,Pending,Running,Completed,Failed}` of runs of 200 flows
  (related flow and deployment, `follows` chained per run as Prefect does), ~20%
  `airflow.dag-run.{running,success,failed}` of 50 DAGs (related DAG and tags, as the
  Airflow listener sends them), ~10% GitHub, webhook, dbt and Stripe events. Ids are
  UUIDv7 of the time they occurred, as producers make them.
- `--automations` automations in Prefect's shape (reactive counts with `within` and
  `for_each`, proactive ones with and without `after`, compound and sequence triggers,
  Prefect, Airflow, GitHub and dbt events; ~10% paused; 1 or 2 actions each); ~20
  decisions each, worded as the evaluator words them, about seeded events (unmatched
  reasons come from the engine's own matcher); 20 action-ledger rows per automation over
  the 7 days (succeeded, failed, retrying; attempts, results and errors as the executors
  write them; the busiest automations fire most).
- 50 SLAs (duration, freshness, deadline) with 20 keys each, windows ok, at-risk or
  missed; 20 webhooks with 2 to 6 refused requests each.

Seeding takes minutes for a million events, so a seeded database is kept: `--reuse PATH`
seeds the SQLite file PATH once (with the action ledger beside it, PATH's stem +
`-actions.db`, as the engine expects) and reuses it on later runs; `--database-url URL`
(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench) seeds that database when it is
empty and reuses it when a run seeded it before; one holding other events or automations
is refused (the benchmark deletes nothing it did not make). Neither: a throwaway SQLite
file. On PostgreSQL the tables are ANALYZEd after seeding, as autovacuum would have done
by the time anyone looks at a dashboard; the engine never analyzes SQLite, so neither
does this.

Timing. `tripwire serve api` (the api role alone: no worker sweeps or evaluates, no
timer fires, so the data holds still) starts on a free port with a fresh home (and its
embedded nats-server) against the database; once /api/health answers, each page of
PAGES gets 3 warm-up GETs and then `--requests` sequential GETs. The time of a request is
what the server says in `Server-Timing: app;dur=<ms>`; where a page does not send it,
the client's wall time (connection on localhost, body read) is used and the page says
`"timing": "client"`. Per page: p50, p99 and max (nearest rank: with 50 requests, p99 is
the slowest), the status and the body's bytes. A page that does not answer 200 is
reported with its status and not timed. A reused seed's events end when it was made: the
result gives its age (`seeded.seed_age_hours`), and a day-old seed is flagged.

Progress goes to stderr; one JSON object with the results goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.tables import action_ledger
from bench import harness
from bench.actions import log_summary
from bench.dashboard_data import RETENTION, seed_definitions, seed_events
from bench.harness import log
from bench.triggers import revision
from events.embedded import free_port
from events.tables import event_resources, events
from events.webhooks.tables import webhook_rejections, webhooks
from sla.tables import sla_windows, slas
from triggers.tables import automations as automations_table
from triggers.tables import decisions
from tripwire.database import create_engine, migrate, sqlite_path
from tripwire.settings import Settings

# --- parameters ---------------------------------------------------------------------------

WARMUPS = 3
HEALTH_TIMEOUT = 120.0
REQUEST_TIMEOUT = 120.0  # one page; a slow page is a finding, not a failure
STALE_AFTER_HOURS = 24  # a reused seed older than this is flagged: its events end then


@dataclass(frozen=True)
class Page:
    """One dashboard page: its name in the results and its path, in which {event},
    {automation} and {sla} stand for a seeded event's id, automation's name and SLA's
    name."""

    name: str
    path: str


# The URL contract of the dashboard; add a row to time another page.
PAGES: tuple[Page, ...] = (
    Page("home", "/ui/"),
    Page("events", "/ui/events"),
    Page("events_filtered", "/ui/events?event=prefect.flow-run"),
    Page("event", "/ui/events/{event}"),
    Page("automations", "/ui/automations"),
    Page("automation", "/ui/automations/{automation}"),
    Page("slas", "/ui/slas"),
    Page("sla", "/ui/slas/{sla}"),
    Page("actions", "/ui/actions"),
    Page("actions_failed", "/ui/actions?status=failed"),
    Page("webhooks", "/ui/webhooks"),
)


@dataclass
class Database:
    """Where the benchmark's data lives: the main database and the action ledger's (a
    file of its own under SQLite, as the engine keeps it)."""

    url: str
    ledger_url: str

    @property
    def files(self) -> list[Path]:
        paths = {sqlite_path(self.url), sqlite_path(self.ledger_url)}
        return [
            Path(f"{path}{suffix}")
            for path in paths
            if path is not None
            for suffix in ("", "-wal", "-shm")
        ]

    @property
    def dialect(self) -> str:
        return (
            "sqlite"
            if sqlite_path(self.url) is not None
            else self.url.split(":", 1)[0].split("+")[0]
        )


def database(path: Path | None, url: str | None) -> Database:
    """The database of `--reuse PATH` or `--database-url URL`, with its ledger's URL as
    the engine derives it."""
    if url is None:
        assert path is not None
        url = f"sqlite+aiosqlite:///{path.resolve()}"
    ledger = Settings(database_url=url).ledger_database_url
    return Database(url, ledger)


async def seeded(db: AsyncEngine) -> bool | None:
    """True when a finished seed is there, False when the database is empty, None when it
    holds something else (an interrupted seed, or data of its own)."""
    async with db.connect() as conn:
        traces = await conn.scalar(select(func.count()).select_from(decisions))
        stored = await conn.scalar(select(events.c.id).limit(1))
        defined = await conn.scalar(select(automations_table.c.id).limit(1))
    if traces:
        return True
    return None if stored is not None or defined is not None else False


async def prepare(target: Database, event_count: int, automation_count: int) -> float | None:
    """Migrate, and seed unless a finished seed is there; the seconds seeding took, or
    None when the database was reused."""
    db = create_engine(target.url)
    ledger_db = db if target.ledger_url == target.url else create_engine(target.ledger_url)
    try:
        await migrate(db)
        if ledger_db is not db:
            await migrate(ledger_db)  # one history for both files, as the engine does
        state = await seeded(db)
        if state is True:
            log("reusing the seeded database (--events and --automations apply to a new seed)")
            return None
        if state is None:
            raise RuntimeError(
                "the database holds events or automations but no finished seed (an "
                "interrupted run?); give an empty database, or delete the file to seed again"
            )
        started = time.monotonic()
        now = datetime.now(UTC)
        log(f"seeding {event_count:,} events over the last {RETENTION.days} days")
        sample = await seed_events(db, event_count, now)
        await seed_definitions(db, ledger_db, automation_count, sample, now)
        await settle(db, ledger_db, target)
        seconds = time.monotonic() - started
        log(f"seeded in {seconds:.1f}s")
        return seconds
    finally:
        await db.dispose()
        if ledger_db is not db:
            await ledger_db.dispose()


async def settle(db: AsyncEngine, ledger_db: AsyncEngine, target: Database) -> None:
    """PostgreSQL: ANALYZE, as autovacuum would have by the time anyone looks at a
    dashboard. SQLite: empty the WALs into the files (the engine's checkpoint thread
    would have), so that the size is the database's and the api starts on a clean file."""
    if target.dialect == "postgresql":
        async with db.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
        return
    for engine in {db, ledger_db}:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


# --- what was seeded ----------------------------------------------------------------------


@dataclass
class Contents:
    """What the database holds, and the seeded things the pages are opened on."""

    counts: dict[str, Any]
    targets: dict[str, str]
    size_mb: float | None


async def _count(db: AsyncEngine, table: Any) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def contents(target: Database) -> Contents:
    """Row counts, the event, automation and SLA the detail pages show, and the size."""
    db = create_engine(target.url)
    ledger_db = db if target.ledger_url == target.url else create_engine(target.ledger_url)
    try:
        counts: dict[str, Any] = {}
        for table in (
            events,
            event_resources,
            automations_table,
            decisions,
            slas,
            sla_windows,
            webhooks,
            webhook_rejections,
        ):
            counts[str(table.name)] = await _count(db, table)
        counts["action_ledger"] = await _count(ledger_db, action_ledger)
        async with db.connect() as conn:
            paused = select(func.count()).where(automations_table.c.enabled.is_(False))
            counts["paused_automations"] = int(await conn.scalar(paused) or 0)
            first, last, recorded = (
                await conn.execute(
                    select(
                        func.min(events.c.occurred),
                        func.max(events.c.occurred),
                        func.max(events.c.recorded),
                    )
                )
            ).one()
            targets = {
                "event": await _event_target(conn),
                "sla": await _sla_target(conn),
            }
        async with ledger_db.connect() as conn:
            by_status = select(action_ledger.c.status, func.count()).group_by(
                action_ledger.c.status
            )
            counts["ledger_by_status"] = {
                row[0]: int(row[1]) for row in await conn.execute(by_status)
            }
            busiest = (
                select(action_ledger.c.automation_name)
                .group_by(action_ledger.c.automation_name)
                .order_by(func.count().desc(), action_ledger.c.automation_name)
                .limit(1)
            )
            targets["automation"] = str(await conn.scalar(busiest) or "")
        counts["events_from"] = first.isoformat() if first else None
        counts["events_to"] = last.isoformat() if last else None
        counts["seeded_at"] = recorded.isoformat() if recorded else None
        if recorded is not None:
            age = (datetime.now(UTC) - recorded).total_seconds() / 3600
            counts["seed_age_hours"] = round(age, 1)
            if age > STALE_AFTER_HOURS:
                # The events end when the seed was made: pages about the last hours or day
                # find fewer of them (or none) than on a live engine.
                log(f"warning: the seed is {age:.0f} hours old; pages of recent events see less")
        size = await _size_mb(db, target)
    finally:
        await db.dispose()
        if ledger_db is not db:
            await ledger_db.dispose()
    return Contents(counts, targets, size)


async def _event_target(conn: Any) -> str:
    """A flow run's failure of about a day ago: what one opens from the events list."""
    day_ago = datetime.now(UTC) - timedelta(days=1)
    query = (
        select(events.c.id)
        .where(events.c.event == "prefect.flow-run.Failed", events.c.occurred <= day_ago)
        .order_by(events.c.occurred.desc())
        .limit(1)
    )
    found = await conn.scalar(query)
    if found is None:
        found = await conn.scalar(select(events.c.id).order_by(events.c.occurred.desc()).limit(1))
    return str(found or "")


async def _sla_target(conn: Any) -> str:
    """The SLA with the most open misses."""
    missed = func.count(sla_windows.c.missed)
    query = (
        select(slas.c.name)
        .select_from(slas.outerjoin(sla_windows, sla_windows.c.sla_id == slas.c.id))
        .group_by(slas.c.name)
        .order_by(missed.desc(), slas.c.name)
        .limit(1)
    )
    return str(await conn.scalar(query) or "")


async def _size_mb(db: AsyncEngine, target: Database) -> float | None:
    if target.dialect == "postgresql":
        async with db.connect() as conn:
            size = await conn.scalar(text("SELECT pg_database_size(current_database())"))
        return round(int(size) / 2**20, 1)
    files = [path for path in target.files if path.exists()]
    return round(sum(path.stat().st_size for path in files) / 2**20, 1) if files else None


# --- timing the pages ---------------------------------------------------------------------


def server_time(header: str | None) -> float | None:
    """The `app` metric's duration in `Server-Timing: app;dur=12.3[, other;dur=…]`."""
    for metric in (header or "").split(","):
        name, *parameters = (part.strip() for part in metric.split(";"))
        if name != "app":
            continue
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip() == "dur":
                with contextlib.suppress(ValueError):
                    return float(value.strip().strip('"'))
    return None


async def time_page(client: httpx.AsyncClient, url: str, requests: int) -> dict[str, Any]:
    """WARMUPS GETs, then `requests` timed ones; a page that does not answer 200 is
    reported with its status, untimed."""
    report: dict[str, Any] = {"url": url}
    try:
        first = await client.get(url)
    except httpx.HTTPError as exc:
        return report | {"status": None, "error": f"{type(exc).__name__}: {exc}"}
    report |= {"status": first.status_code, "bytes": len(first.content)}
    if first.status_code != 200:
        return report | {"timed": False, "error": " ".join(first.text.split())[:200]}
    for _ in range(WARMUPS - 1):
        await client.get(url)
    server, wall, errors = [], [], Counter[str]()
    for _ in range(requests):
        sent = time.perf_counter()
        try:
            response = await client.get(url)
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
            continue
        elapsed = (time.perf_counter() - sent) * 1000
        if response.status_code != 200:
            errors[f"http_{response.status_code}"] += 1
            continue
        wall.append(elapsed)
        report["bytes"] = len(response.content)
        duration = server_time(response.headers.get("server-timing"))
        if duration is not None:
            server.append(duration)
    # The server's own figure only when every timed answer gave it: mixing the two would
    # put client-side overhead into some samples and not others.
    timing = "server-timing" if server and len(server) == len(wall) else "client"
    spread = harness.percentiles(server if timing == "server-timing" else wall, (50, 99))
    report |= {
        "timed": bool(wall),
        "timing": timing,
        "requests": len(wall),
        "p50_ms": spread["p50"],
        "p99_ms": spread["p99"],
        "max_ms": spread["max"],
        "client_p50_ms": harness.percentiles(wall, (50,))["p50"],
    }
    if errors:
        report["errors"] = dict(errors)
    return report


def page_url(page: Page, targets: dict[str, str]) -> str:
    return page.path.format(**{name: quote(value, safe="") for name, value in targets.items()})


async def time_pages(
    api_url: str,
    engine: subprocess.Popen[bytes],
    home: Path,
    targets: dict[str, str],
    requests: int,
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api_url, timeout=REQUEST_TIMEOUT) as client:
        started = time.monotonic()
        await harness.wait_healthy(client, engine, home, HEALTH_TIMEOUT)
        log(f"api healthy in {time.monotonic() - started:.1f}s at {api_url}")
        found = {}
        for page in PAGES:
            report = await time_page(client, page_url(page, targets), requests)
            found[page.path] = report
            if report.get("timed"):
                log(
                    f"{page.path}: p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms "
                    f"({report['timing']}, {report['bytes']:,} bytes)"
                )
            else:
                log(f"{page.path}: {report['status']}, not timed")
    return found


# --- the run ------------------------------------------------------------------------------


def run(
    event_count: int = 1_000_000,
    automation_count: int = 1000,
    requests: int = 50,
    reuse: Path | None = None,
    database_url: str | None = None,
    port: int | None = None,
) -> dict[str, Any]:
    """Seed (or reuse) the database, time the pages on the api role; the result object."""
    if event_count < 1 or automation_count < 1 or requests < 1:
        raise ValueError("--events, --automations and --requests must be positive")
    benchmarked = revision()  # before the run: the checkout may change while it runs
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-ui-") as tmp:
        root = Path(tmp)
        target = database(reuse or root / "tripwire.db", database_url)
        fresh = database_url is None and not Path(sqlite_path(target.url) or "").exists()
        try:
            seed_seconds = asyncio.run(prepare(target, event_count, automation_count))
        except BaseException:
            if fresh:  # a file this run made and did not finish: not to be reused
                for path in target.files:
                    path.unlink(missing_ok=True)
            raise
        found = asyncio.run(contents(target))
        log(f"database: {found.size_mb} MiB; pages on {found.targets}")
        port = port or free_port()
        home = root / "home"
        env = {"TRIPWIRE_DATABASE_URL": target.url, "TRIPWIRE_LOG_LEVEL": "WARNING"}
        engine = harness.serve("api", port, home, env)
        log(f"api pid {engine.pid}, home {home}")
        try:
            pages = asyncio.run(
                time_pages(f"http://127.0.0.1:{port}", engine, home, found.targets, requests)
            )
        finally:
            harness.stop_engine(engine, home)
        engine_log = log_summary(home / "engine.log")
    return {
        "benchmark": "ui",
        "machine": {**harness.machine(with_cpu_model=True), "dialect": target.dialect},
        "revision": benchmarked,
        "parameters": {
            # What a new seed would hold; a reused database holds what `seeded` counts.
            **(
                {}
                if seed_seconds is None
                else {"events": event_count, "automations": automation_count}
            ),
            "requests": requests,
            "warmups": WARMUPS,
            "database": "reused" if seed_seconds is None else "seeded by this run",
            "engine": "tripwire serve api (the api role alone, embedded nats-server)",
        },
        "seeded": found.counts,
        "seed_seconds": round(seed_seconds, 1) if seed_seconds is not None else None,
        "database_mb": found.size_mb,
        "targets": found.targets,
        "pages": pages,
        # What the api printed: its banner, then warnings and errors (a page's 500 shows here).
        "engine_log": engine_log,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m bench.ui`."""
    parser = harness.argument_parser("bench.ui", __doc__)
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events to seed (default 1000000)"
    )
    parser.add_argument(
        "--automations", type=int, default=1000, help="automations to seed (default 1000)"
    )
    parser.add_argument(
        "--requests", type=int, default=50, help="timed GETs per page, after 3 warm-ups (50)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--reuse",
        type=Path,
        default=None,
        metavar="PATH",
        help="SQLite file: seeded once if missing, reused otherwise",
    )
    where.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench: seeded when empty, "
        "reused when seeded",
    )
    parser.add_argument("--port", type=int, default=None, help="API port (default free)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; 0 when every page answered 200 and was timed."""
    args = parse_args(argv)
    result = harness.run_printed(
        lambda: run(
            args.events, args.automations, args.requests, args.reuse, args.database_url, args.port
        )
    )
    if isinstance(result, int):
        return result
    return 0 if all(page.get("timed") for page in result["pages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
