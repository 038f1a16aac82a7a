"""Alerts benchmark: 10,000 firings a minute across 1,000 keys into grouped notifications.

    python -m bench.alerts [--minutes 20] [--rate 10000] [--keys 1000] [--groups 50]
                           [--waves 5] [--wave 2m] [--wait 30s] [--interval 5m]
                           [--cpu-repeats 5] [--cpu-batches 25,130,2000]
                           [--database-url URL]

Part 1, grouping. One automation fires on every `bench.job.failed` of a job (Reactive,
threshold 1, for_each the job: `--keys` jobs, so as many alerts) with `resolve_after: 1m`
and a `call-webhook` notification grouped `by: [bench.team]`: each job belongs to one of
`--groups` teams, so there are that many groups. The teams fail in `--waves` waves taking
turns, each `--wave` long: one wave's jobs fail round-robin at `--rate` failures a minute,
posted every 0.1 s; then they go quiet, their alerts resolve a minute later and the
groups send their resolved notices. A group's life in one period: the first notice
`--wait` after its first firing, the resolved one an `--interval` after that, and the next
wave of the same teams starts afresh.

It runs in this process, on the worker's own parts: `build_pipeline` as the engine builds
it, a real nats-server (everything it publishes is published there) and a real database.
It is not a running engine because the group timers are minutes long: time moves through
the clock seam (`events.clock`) instead of by sleeping. The clock stands still while the
worker handles a batch or runs a timer pass, and then moves on by the wall time that took;
when the worker would be idle it jumps to the next post or the next due instant. So time
is event time, 20 minutes take what the work takes, and every delay the work causes is in
the figures. The batches are what the store consumer would pull: everything waiting, up
to `store_batch_size`: the failures posted by then and the events the pipeline published
onto the events stream since the last batch (its firings' `tripwire.automation.triggered`,
which open and feed the alerts, and the `tripwire.alert.*` events). The timer is the
engine's: a pass at the next due instant the pipeline reports and a poll every 5 s, each
`Pipeline.run_due(now)`. Notices are counted as the pass publishes them on the actions
subject; nothing executes them (bench.actions measures that).

Figures: firings, alerts and groups (from the database: every firing fed its alert);
notices per interval window (at most one per group per window), and the closest two
notices of one group in one episode (at least the interval), both by the instant the pass
decided for; from the failure that started an episode of a group, or a job's alert, to
the pass that decided and published the group's first notice, against `wait` (target:
within wait + 1 s); timer passes (by notices decided) and worker batches in ms; the
worker's busy and CPU share of one core while the failures came, and the alerts engine's
share of its CPU.

Part 2, CPU. bench.worker's triggers workload (1,000 automations, 100 candidates,
Prefect flow-run events) with the events it publishes handed back to later batches, alerts
on and off, alternating, `--cpu-repeats` times per batch size: CPU µs per workload event,
medians and their ratio (target: alerts on costs at most 10% more), and the alerts
engine's own CPU measured inside the runs, which the host's drift from run to run does
not touch.

`--database-url` (a PostgreSQL server) runs both parts on throwaway databases there,
dropped at the end; the default is a SQLite file. Progress goes to stderr; one JSON object
with the results goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid6 import uuid7

from alerts.tables import alert_firings, alert_groups, alerts
from bench import harness, worker
from bench.harness import log
from events import clock
from events.bus import Names
from events.durations import parse_duration
from events.embedded import EmbeddedNats
from events.parsing import encode, receive_events_json
from events.store import EventStore
from sla.store import SLAStore
from triggers.pipeline import Pipeline
from triggers.repository import AutomationStore
from tripwire.definitions import load_paths
from tripwire.engine import build_pipeline, settle_heap
from tripwire.settings import Settings

POST_EVERY = timedelta(milliseconds=100)  # failures arrive in posts this far apart
POLL = timedelta(seconds=5)  # the engine's timer polls this often besides its wake-ups
RESOLVE_AFTER = timedelta(minutes=1)
TARGET_OVER_WAIT_S = 1.0
TARGET_CPU_RATIO = 1.10
PERCENTILES = (50, 99)
FIRING = b'"event":"tripwire.automation.triggered"'
TEAM = "bench.team"


@dataclass(frozen=True)
class Parameters:
    minutes: float = 20
    rate: int = 10_000  # failures (and so firings) a minute
    keys: int = 1000
    groups: int = 50
    waves: int = 5
    wave: timedelta = timedelta(minutes=2)
    wait: timedelta = timedelta(seconds=30)
    interval: timedelta = timedelta(minutes=5)
    database_url: str | None = None


def write_automation(folder: Path, p: Parameters) -> Path:
    """The automation as a definitions file in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    grouping = {
        "by": [TEAM],
        "wait": f"{p.wait.total_seconds():g}s",
        "interval": f"{p.interval.total_seconds():g}s",
    }
    automation = {
        "name": "bench-job-failed",
        "severity": "critical",
        "resolve_after": f"{RESOLVE_AFTER.total_seconds():g}s",
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": "bench.job.*"},
            "expect": ["bench.job.failed"],
            "for_each": ["prefect.resource.id"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        # Never called: nothing executes the notices here.
        "actions": [
            {"type": "call-webhook", "url": "http://127.0.0.1:9/hook", "grouping": grouping}
        ],
    }
    path = folder / "bench-alerts.yaml"
    path.write_text(yaml.safe_dump({"automations": [automation]}, sort_keys=False))
    return path


# --- the failures -------------------------------------------------------------------------


def team_of(job: int, p: Parameters) -> int:
    return job % p.groups


def failure(job: int, team: int, at: datetime) -> bytes:
    return orjson.dumps(
        {
            "id": str(uuid7()),
            "occurred": at.isoformat(),
            "event": "bench.job.failed",
            "resource": {
                "prefect.resource.id": f"bench.job.{job:04d}",
                "prefect.resource.name": f"job-{job:04d}",
                TEAM: f"team-{team:02d}",
            },
            "payload": {"error": "TimeoutError: the warehouse did not answer within 300s"},
        }
    )


@dataclass
class Post:
    at: datetime
    wave: int
    jobs: list[int]


def posts(start: datetime, p: Parameters) -> Iterator[Post]:
    """Every 0.1 s the failures of the wave under way, round-robin over its jobs: a team
    is in wave `team % waves`, so each wave holds `groups / waves` teams."""
    end = start + timedelta(minutes=p.minutes)
    members = [[j for j in range(p.keys) if team_of(j, p) % p.waves == w] for w in range(p.waves)]
    turn = [0] * p.waves
    every_ms = POST_EVERY // timedelta(milliseconds=1)
    n = 0
    while (at := start + n * POST_EVERY) < end:
        wave = int((at - start) / p.wave)
        jobs = members[wave % p.waves]
        count = ((n + 1) * every_ms * p.rate) // 60_000 - (n * every_ms * p.rate) // 60_000
        first = turn[wave % p.waves]
        turn[wave % p.waves] += count
        yield Post(at, wave, [jobs[(first + i) % len(jobs)] for i in range(count)])
        n += 1


# --- what was decided ---------------------------------------------------------------------


@dataclass
class Episode:
    """A team's wave: when its first job failed, and each job's first failure."""

    wave: int
    first: datetime
    jobs: dict[int, datetime] = field(default_factory=dict)
    told: bool = False  # its first notice was decided


@dataclass
class Notices:
    """Notices as the timer passes published them, and what each first one took."""

    p: Parameters
    start: datetime
    episodes: dict[int, Episode] = field(default_factory=dict)  # by team
    decided: list[tuple[datetime, int, str, bool]] = field(default_factory=list)
    group_s: list[float] = field(default_factory=list)  # first failure of an episode
    alert_s: list[float] = field(default_factory=list)  # first failure of each job
    joined_late: int = 0  # jobs whose first failure came after the first notice

    def posted(self, post: Post) -> None:
        for job in post.jobs:
            team = team_of(job, self.p)
            episode = self.episodes.get(team)
            if episode is None or episode.wave != post.wave:
                episode = self.episodes[team] = Episode(post.wave, post.at)
            if job not in episode.jobs:
                episode.jobs[job] = post.at
                if episode.told:
                    self.joined_late += 1

    def published(self, body: bytes, at: datetime) -> None:
        """A notice's request, published at `at` by the pass that decided it."""
        request = orjson.loads(body)
        notice = request["notice"]
        team = int(notice["labels"][TEAM].removeprefix("team-"))
        episode = self.episodes.get(team)
        first = notice["status"] == "firing" and episode is not None and not episode.told
        # Windows and gaps by the instant the pass decided for (what the rules go by).
        decided = datetime.fromisoformat(request["triggered"])
        self.decided.append((decided, team, notice["status"], first))
        if first and episode is not None:
            episode.told = True
            self.group_s.append((at - episode.first).total_seconds())
            self.alert_s += [(at - t).total_seconds() for t in episode.jobs.values() if t <= at]

    def figures(self) -> dict[str, Any]:
        windows: Counter[int] = Counter()
        per_group: Counter[tuple[int, int]] = Counter()
        by_team: dict[int, list[tuple[datetime, bool]]] = defaultdict(list)
        for at, team, _, first in self.decided:
            window = int((at - self.start) / self.p.interval)
            windows[window] += 1
            per_group[window, team] += 1
            by_team[team].append((at, first))
        # Within an episode (not across a first notice), notices at least `interval` apart.
        gaps = [
            (b[0] - a[0]).total_seconds()
            for told in by_team.values()
            for a, b in pairwise(told)
            if not b[1]
        ]
        wait = self.p.wait.total_seconds()
        over = [s - wait for s in self.group_s]
        worst = max(over, default=None)
        return {
            "total": len(self.decided),
            "by_status": dict(Counter(status for _, _, status, _ in self.decided)),
            "per_interval_window": [windows[w] for w in range(max(windows, default=-1) + 1)],
            "max_per_group_per_window": max(per_group.values(), default=0),
            "closest_in_an_episode_s": round(min(gaps), 3) if gaps else None,
            "first_notice_s": {
                "from_a_groups_first_failure": harness.percentiles(self.group_s, PERCENTILES),
                "from_each_jobs_first_failure": harness.percentiles(self.alert_s, PERCENTILES),
                "episodes": len(self.group_s),
                "jobs_joined_after_it": self.joined_late,
            },
            "over_wait_ms": harness.percentiles([s * 1000 for s in over], PERCENTILES),
            "target_wait_plus_1s_met": worst is not None and worst <= TARGET_OVER_WAIT_S,
        }


# --- the worker and its timer on event time -----------------------------------------------


class Timeline:
    """The store consumer and the timer of one worker, taking turns on event time."""

    def __init__(
        self, pipeline: Pipeline, bus: worker.EchoBus, moved: clock.FrozenClock, p: Parameters
    ) -> None:
        self.pipeline, self.bus, self.clock, self.p = pipeline, bus, moved, p
        self.start = moved.current
        self.notices = Notices(p, self.start)
        self.wake: datetime | None = self.start  # the timer runs once as it starts
        self.poll = self.start
        self.batch_size = Settings().store_batch_size
        self.batch_ms: list[float] = []
        self.pass_ms: dict[int, list[float]] = defaultdict(list)  # by notices decided
        self.busy = 0.0
        self.cpu = 0.0
        self.firings = 0
        self.under_load: tuple[float, float] | None = None  # busy and CPU seconds by then
        pipeline.on_due = self._wake_at

    def _wake_at(self, when: datetime) -> None:
        if self.wake is None or when < self.wake:
            self.wake = when

    async def _timed(self, work: Any) -> float:
        """Run `work`, then move the clock on by the wall time it took."""
        wall, cpu = time.perf_counter(), time.process_time()
        await work
        took = time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        self.busy += took
        self.clock.advance(timedelta(seconds=took))
        return took * 1000

    async def _pass(self, now: datetime) -> None:
        self.wake = None
        while self.poll <= now:
            self.poll += POLL
        before = len(self.bus.requests)
        took = await self._timed(self.pipeline.run_due(now))
        decided = self.bus.requests[before:]
        for request in decided:
            self.notices.published(request, self.clock.current)
        self.pass_ms[len(decided)].append(took)

    async def run(self) -> None:
        end = self.start + timedelta(minutes=self.p.minutes)
        # Then quiet, until the last wave's alerts resolved and its groups said so.
        drain_end = end + RESOLVE_AFTER + self.p.interval + self.p.wait + POLL
        upcoming = posts(self.start, self.p)
        post = next(upcoming, None)
        waiting: list[bytes] = []
        while (now := self.clock.current) < drain_end:
            due = min(filter(None, (self.wake, self.poll)))
            if due <= now:
                await self._pass(now)
                continue
            while post is not None and post.at <= now:
                self.notices.posted(post)
                waiting += _bodies(post, self.p)
                post = next(upcoming, None)
            waiting += self.bus.take_events()
            if post is None and not waiting and self.under_load is None:
                self.under_load = (self.busy, self.cpu)  # the last failure and its firing
            if waiting:
                batch, waiting = waiting[: self.batch_size], waiting[self.batch_size :]
                self.batch_ms.append(await self._timed(self.pipeline.handle(batch)))
                self.firings += sum(FIRING in body for body in batch)
                continue
            self.clock.current = min(due, post.at if post is not None else drain_end)

    def figures(self) -> dict[str, Any]:
        load = self.p.minutes * 60
        busy, cpu = self.under_load or (self.busy, self.cpu)
        passes = {
            str(notices): {"passes": len(ms), **harness.percentiles(ms, PERCENTILES)}
            for notices, ms in sorted(self.pass_ms.items())
        }
        return {
            "firings_stored": self.firings,
            "notices": self.notices.figures(),
            "timer_pass_ms_by_notices_decided": passes,
            "worker": {
                "batches": len(self.batch_ms),
                "batch_ms": harness.percentiles(self.batch_ms, PERCENTILES),
                # Of one core, while the failures came (the quiet end left out).
                "busy_share_under_load": round(busy / load, 3),
                "cpu_share_under_load": round(cpu / load, 3),
            },
        }


def _bodies(post: Post, p: Parameters) -> list[bytes]:
    """The post's failures as the API hands them to the bus: validated and stamped."""
    if not post.jobs:
        return []
    array = b"[" + b",".join(failure(j, team_of(j, p), post.at) for j in post.jobs) + b"]"
    return [message.data for message in encode(receive_events_json(array))]


async def _counts(db: AsyncEngine) -> dict[str, int]:
    async with db.connect() as conn:

        async def count(query: Any) -> int:
            return int(await conn.scalar(query) or 0)

        return {
            "alerts": await count(select(func.count()).select_from(alerts)),
            "alerts_still_open": await count(
                select(func.count()).where(alerts.c.open_fingerprint.is_not(None))
            ),
            "firings_fed_to_alerts": await count(select(func.count()).select_from(alert_firings)),
            "groups": await count(select(func.count()).select_from(alert_groups)),
        }


async def _grouping(home: Path, p: Parameters) -> dict[str, Any]:
    nats = EmbeddedNats(home / "nats")
    await nats.astart()
    bus = worker.EchoBus(nats.url, Names("bench"))
    try:
        async with worker.database(home, p.database_url) as db:
            await bus.connect()
            automations = AutomationStore(db)
            await automations.apply(load_paths([write_automation(home / "defs", p)]).automations)
            pipeline = build_pipeline(
                Settings(), db, EventStore(db), bus, automations, SLAStore(db)
            )
            book = worker.timed_alerts(pipeline)
            assert book is not None, "build_pipeline has an alerts engine"
            await pipeline.reload(force=True)
            settle_heap()
            start = datetime.now(UTC).replace(microsecond=0)
            with clock.frozen_clock(start) as moved:
                timeline = Timeline(pipeline, bus, moved, p)
                await timeline.run()
            figures = timeline.figures()
            figures["worker"]["alerts_share_of_cpu"] = {
                "batches": round(book.cpu / timeline.cpu, 3),
                "timer_passes": round(book.due_cpu / timeline.cpu, 3),
            }
            return {**await _counts(db), **figures}
    finally:
        await bus.close()
        await asyncio.to_thread(nats.stop)


def grouping(p: Parameters) -> dict[str, Any]:
    log(
        f"grouping: {p.rate:,} failures a minute over {p.keys:,} jobs in {p.groups} teams, "
        f"{p.minutes:g} minutes of event time"
    )
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-alerts-") as tmp:
        return asyncio.run(_grouping(Path(tmp), p))


# --- CPU, alerts on and off ---------------------------------------------------------------


def _worker(size: int, alerts: bool, database_url: str | None) -> dict[str, Any]:
    """One `python -m bench.worker` run's result for the batch size, in a new process so
    that nothing of the runs before it (heap, caches) weighs on it."""
    command = [sys.executable, "-m", "bench.worker", "--batches", str(size), "--echo"]
    command += ["--alerts", "on" if alerts else "off"]
    if database_url is not None:
        command += ["--database-url", database_url]
    done = subprocess.run(command, stdout=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.worker failed with code {done.returncode}")
    found: dict[str, Any] = orjson.loads(done.stdout)["results"][0]
    return found


def cpu(sizes: Sequence[int], repeats: int, database_url: str | None) -> dict[str, Any]:
    """bench.worker's workload, its published events handed back, alerts on and off in
    turn (the order swapped each round, so drift of the host's speed hits both)."""
    runs: dict[tuple[int, bool], list[dict[str, Any]]] = defaultdict(list)
    for round_ in range(repeats):
        for size in sizes:
            for alerts_on in (True, False) if round_ % 2 == 0 else (False, True):
                log(f"cpu, round {round_ + 1} of {repeats}: alerts {'on' if alerts_on else 'off'}")
                runs[size, alerts_on].append(_worker(size, alerts_on, database_url))
    results = []
    for size in sizes:
        on = [r["cpu_us_per_event"] for r in runs[size, True]]
        off = [r["cpu_us_per_event"] for r in runs[size, False]]
        ratio = statistics.median(on) / statistics.median(off)
        # Measured inside the runs with alerts on, so the host's drift between runs does
        # not touch it; what storing the events the alerts publish costs is not in it.
        own = round(statistics.median(r["alerts_cpu_us_per_event"] for r in runs[size, True]), 1)
        results.append(
            {
                "batch": size,
                "cpu_us_per_event_on": on,
                "cpu_us_per_event_off": off,
                "median_on": round(statistics.median(on), 1),
                "median_off": round(statistics.median(off), 1),
                "ratio": round(ratio, 3),
                "ratio_of_each_round": round(
                    statistics.median(a / b for a, b in zip(on, off, strict=True)), 3
                ),
                "target_met": ratio <= TARGET_CPU_RATIO,
                "alerts_engine_cpu_us_per_event": own,
                "alerts_engine_share": round(own / (statistics.median(on) - own), 3),
                "events_published_back": {
                    "on": statistics.median(r["echoed"] for r in runs[size, True]),
                    "off": statistics.median(r["echoed"] for r in runs[size, False]),
                },
            }
        )
    return {
        "workload": "bench.worker --echo: 1,000 automations, 100 candidates; 10,000 events "
        "timed after 20,000; what the pipeline publishes is stored in the next batch",
        "results": results,
    }


# --- the command line ---------------------------------------------------------------------


def run(p: Parameters, cpu_sizes: Sequence[int], cpu_repeats: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "alerts",
        "machine": harness.machine(with_cpu_model=True),
        "parameters": {
            "minutes": p.minutes,
            "failures_per_minute": p.rate,
            "keys": p.keys,
            "groups": p.groups,
            "waves": p.waves,
            "wave_s": p.wave.total_seconds(),
            "wait_s": p.wait.total_seconds(),
            "interval_s": p.interval.total_seconds(),
            "resolve_after_s": RESOLVE_AFTER.total_seconds(),
            "database": "sqlite" if p.database_url is None else "postgresql",
        },
        "grouping": grouping(p),
    }
    if cpu_repeats:
        result["cpu"] = cpu(cpu_sizes, cpu_repeats, p.database_url)
    return result


def _duration(text: str) -> timedelta:
    parsed = parse_duration(text)
    if not isinstance(parsed, timedelta) or parsed <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30s, 5m or 1h")
    return parsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.argument_parser("bench.alerts", __doc__)
    parser.add_argument("--minutes", type=float, default=20, help="event time of failures (20)")
    parser.add_argument("--rate", type=int, default=10_000, help="failures a minute (10000)")
    parser.add_argument("--keys", type=int, default=1000, help="jobs, one alert each (1000)")
    parser.add_argument("--groups", type=int, default=50, help="teams, one group each (50)")
    parser.add_argument("--waves", type=int, default=5, help="waves the teams take turns in")
    parser.add_argument("--wave", type=_duration, default=timedelta(minutes=2), help="(2m)")
    parser.add_argument("--wait", type=_duration, default=timedelta(seconds=30), help="(30s)")
    parser.add_argument("--interval", type=_duration, default=timedelta(minutes=5), help="(5m)")
    parser.add_argument("--cpu-repeats", type=int, default=5, help="rounds of part 2; 0: none")
    parser.add_argument("--cpu-batches", default="25,130,2000", help="part 2's batch sizes")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test: "
        "throwaway databases there (default: SQLite files)",
    )
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.cpu_batches.split(",") if part.strip()]
    if args.keys < args.groups or args.groups < args.waves or min(sizes, default=1) < 1:
        parser.error("need --keys ≥ --groups ≥ --waves and positive --cpu-batches")
    p = Parameters(
        args.minutes,
        args.rate,
        args.keys,
        args.groups,
        args.waves,
        args.wave,
        args.wait,
        args.interval,
        args.database_url,
    )
    result = harness.run_printed(lambda: run(p, sizes, args.cpu_repeats))
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
