"""SLA benchmark: 100,000 open duration windows, 1,000 deadlines in one second, a restart.

    python -m bench.sla [--keys 100000] [--same-second 1000] [--rate 1000] [--lead 15]
                        [--batch 500] [--port P]

Writes one duration SLA to a temporary folder (start `bench.job.started`, expect
`bench.job.finished`, for_each `prefect.resource.id`, within 1h, no actions) and starts
`tripwire up --automations FOLDER` on a free port (and a known embedded NATS port) with a
fresh home; `tripwire up` runs the api, worker and sla roles in one process.

Load: `--keys` `bench.job.started` events of distinct resources, occurred now, POSTed in
`--batch`-event batches, 4 in flight; each opens a window due in an hour. Timed until the
store holds them all (a window is written in the transaction that stores its event):
`keys_per_s`. The engine's peak memory is read then.

Misses: T is a whole second `--lead` seconds ahead. `--same-second` more keys start at
T - 1h + k * 0.9 ms, so all their deadlines fall within the second T. From then until
5 s after T, `--rate` events/s of `bench.noise` (which no SLA watches) are offered through
the API in paced POSTs. A core NATS subscription on the events subject takes the time each
`tripwire.sla.missed` arrives; its lag is that time minus the miss's `window.end` (the
deadline): p50, p99 and max, the misses received (and missing) and their `late` flags.
The miss event's `received` (stamped by the timer pass that decided it) splits the lag
into deciding and publishing; the engine's /metrics give its timer wake-ups (and how late
they ran) and its passes over due windows (and how long one took).

Reload: the engine is stopped and started again on the same home; `reload_seconds` runs
from starting it until /api/health answers 200 and reports the timer's next due instant
(`timers.next_due`, set by the first timer pass), which must be the earliest deadline of
the loaded keys; and the CPU time the engine had used by then, less sensitive to a busy
machine. The engine's memory is read again then.

Progress goes to stderr; one JSON object with the results goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import yaml
from nats.aio.msg import Msg
from uuid6 import uuid7

from bench import harness
from bench.actions import log_summary
from bench.harness import log
from bench.triggers import TIME, revision, stamp
from events.bus import Names
from events.embedded import free_port

HEALTH_TIMEOUT = 60.0
RELOAD_TIMEOUT = 300.0  # at most this long for the restarted engine's first timer pass
STORE_TIMEOUT = 1800.0  # at most this long for the keys to be stored,
STORE_STALL = 60.0  # and never longer than this without the count moving
MISS_WAIT = 60.0  # how long after the deadline second to wait for the last misses
AFTER = 5.0  # seconds of background load after the deadline second
CONCURRENCY = 4  # key load: POSTs in flight
NOISE_BATCH = 50  # background load: events per POST (20 POSTs/s at 1,000 events/s)
NOISE_CONCURRENCY = 4
ATTEMPTS = 5  # a key batch is POSTed again (same ids: deduplicated) when it fails
SPACING = timedelta(microseconds=900)  # between the deadlines of the same-second keys
WITHIN = timedelta(hours=1)
PERCENTILES = (50, 99)
TARGET_LAG_P99_MS = 1000.0
TARGET_RELOAD_SECONDS = 10.0
TARGET_RSS_MB = 500.0

SLA_NAME = "bench-job-finishes-within-1h"
STARTED = "bench.job.started"
FINISHED = "bench.job.finished"
NOISE = "bench.noise"
MISSED = "tripwire.sla.missed"
MISSED_BYTES = MISSED.encode()
NAMES = Names()  # the engine's default namespace, "tripwire"


# --- the SLA and the events ---------------------------------------------------------------


def write_sla(folder: Path) -> Path:
    """The duration SLA as one YAML file in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench-sla.yaml"
    sla = {
        "name": SLA_NAME,
        "kind": "duration",
        "description": "Every bench job finishes within an hour of starting.",
        "start": [STARTED],
        "expect": [FINISHED],
        "for_each": ["prefect.resource.id"],
        "within": "1h",
        "actions": [],
    }
    path.write_text(yaml.safe_dump({"slas": [sla]}, sort_keys=False))
    return path


def _event(name: str, resource: str, occurred: bytes = TIME) -> bytes:
    return orjson.dumps(
        {
            "id": str(uuid7()),
            "occurred": occurred.decode(),
            "event": name,
            "resource": {"prefect.resource.id": resource, "prefect.resource.name": resource},
        }
    )


def _array(events: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(events) + b"]"


def key_batches(keys: int, batch: int) -> list[bytes]:
    """`bench.job.started` of `keys` distinct jobs, the time still a placeholder."""
    return [
        _array([_event(STARTED, f"bench.job.{n}") for n in range(start, min(keys, start + batch))])
        for start in range(0, keys, batch)
    ]


def same_second_batches(count: int, second: datetime, batch: int) -> list[bytes]:
    """`count` jobs started so that their deadlines fall k * 0.9 ms after `second`."""
    events = [
        _event(STARTED, f"bench.job.due-{k}", (second - WITHIN + k * SPACING).isoformat().encode())
        for k in range(count)
    ]
    return [_array(events[i : i + batch]) for i in range(0, count, batch)]


def noise_batch(size: int) -> bytes:
    """`size` events no SLA watches, the time still a placeholder."""
    return _array([_event(NOISE, "bench.noise") for _ in range(size)])


class Stamp:
    """Fills in now as `occurred`, remembering the earliest time it filled in."""

    def __init__(self) -> None:
        self.first: datetime | None = None

    def __call__(self, body: bytes) -> bytes:
        now = datetime.now(UTC)
        if self.first is None or now < self.first:
            self.first = now
        return body.replace(TIME, now.isoformat().encode())


# --- the API ------------------------------------------------------------------------------


async def post_all(
    client: httpx.AsyncClient,
    tally: harness.BatchLoad,
    pool: list[bytes],
    events_per_batch: Sequence[int],
    concurrency: int,
    prepare: Callable[[bytes], bytes] | None = None,
) -> None:
    """POST every batch of `pool` once, `concurrency` in flight; a failed POST is sent
    again. (harness.post_batches runs until a deadline, building more batches: this load is
    a fixed set of keys.)"""
    indexes = iter(range(len(pool)))

    async def worker() -> None:
        for index in indexes:
            body = pool[index] if prepare is None else prepare(pool[index])
            pool[index] = b""  # sent once: let it go
            for attempt in range(ATTEMPTS):
                sent = time.perf_counter()
                try:
                    response = await client.post(
                        "/api/events", content=body, headers=harness.JSON_HEADERS
                    )
                except httpx.HTTPError as exc:
                    tally.errors[type(exc).__name__] += 1
                else:
                    tally.post_ms.append((time.perf_counter() - sent) * 1000)
                    if response.status_code == 202:
                        tally.accepted += events_per_batch[index]
                        break
                    tally.errors[f"http_{response.status_code}"] += 1
                await asyncio.sleep(0.5 * (attempt + 1))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def stored(client: httpx.AsyncClient, name: str) -> int:
    """Stored events named `name`."""
    body = {"filter": {"event": {"name": [name]}}, "limit": 1}
    response = await client.post("/api/events/filter", json=body)
    response.raise_for_status()
    return int(response.json()["total"])


async def health(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/health", timeout=2.0)
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


TIMER_METRICS = {
    "wakeups": "tripwire_timer_lag_seconds_count",
    "wake_lag_seconds": "tripwire_timer_lag_seconds_sum",
    "due_passes": 'tripwire_evaluation_seconds_count{kind="due"}',
    "due_pass_seconds": 'tripwire_evaluation_seconds_sum{kind="due"}',
}


async def timer_metrics(client: httpx.AsyncClient) -> dict[str, float]:
    """The engine's timer counters from /metrics (see TIMER_METRICS); {} when unreadable."""
    with contextlib.suppress(httpx.HTTPError):
        response = await client.get("/metrics")
        if response.status_code == 200:
            values = dict(line.rsplit(" ", 1) for line in response.text.splitlines() if " " in line)
            with contextlib.suppress(KeyError, ValueError):
                return {name: float(values[metric]) for name, metric in TIMER_METRICS.items()}
    return {}


def timer_report(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """What the timer did between two readings: wake-ups at a scheduled instant and how
    late they ran (mean), passes over due windows and how long one took (mean)."""
    if not before or not after:
        return {}
    delta = {name: after[name] - before[name] for name in TIMER_METRICS}
    wakeups, passes = int(delta["wakeups"]), int(delta["due_passes"])
    return {
        "wakeups": wakeups,
        "wake_lag_mean_ms": round(1000 * delta["wake_lag_seconds"] / wakeups, 1)
        if wakeups
        else None,
        "due_passes": passes,
        "due_pass_mean_ms": round(1000 * delta["due_pass_seconds"] / passes, 1) if passes else None,
    }


async def wait_stored(
    client: httpx.AsyncClient, name: str, expected: int, started: float, what: str
) -> int:
    """Poll until `expected` events named `name` are stored, the count stalls or times out;
    the count last seen."""
    last = -1

    async def count() -> int:
        nonlocal last
        try:
            last = await stored(client, name)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log(f"{what}: polling the store failed ({exc!r})")
        return last

    return await harness.wait_counted(
        count, expected, started, what, timeout=STORE_TIMEOUT, stall=STORE_STALL
    )


# --- the misses ---------------------------------------------------------------------------


class MissWatcher:
    """A core NATS subscription on the events subject: the arrival time of every message
    that may be a miss (parsed afterwards, to keep the callback short)."""

    def __init__(self, expected: int) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self.expected = expected
        self.all_in = asyncio.Event()  # set once `expected` arrived
        self._connection: Any = None

    async def start(self, url: str) -> None:
        self._connection = await nats.connect(url, name="bench-sla")
        await self._connection.subscribe(NAMES.events_wildcard, cb=self._on_message)
        await self._connection.flush()

    async def stop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()

    async def _on_message(self, msg: Msg) -> None:
        at = time.time()
        if MISSED_BYTES in msg.data:
            self.arrivals.append((at, msg.data))
            if len(self.arrivals) >= self.expected:
                self.all_in.set()

    def misses(self) -> list[tuple[float, dict[str, Any]]]:
        """(arrival, event) of each `tripwire.sla.missed` of the bench SLA."""
        found = []
        for at, data in self.arrivals:
            event = orjson.loads(data)
            if event.get("event") == MISSED and event["payload"].get("name") == SLA_NAME:
                found.append((at, event))
        return found


@dataclass
class Misses:
    """What the deadline second measured."""

    deadline: datetime = field(default_factory=lambda: datetime.now(UTC))
    posted: int = 0
    stored_before_deadline: bool = False
    stored_seconds_before_deadline: float | None = None
    noise: harness.BatchLoad = field(default_factory=harness.BatchLoad)
    noise_offered_rate: float | None = None
    max_store_lag: int = 0
    cpu_percent: dict[str, float | None] = field(default_factory=dict)
    lags_ms: list[float] = field(default_factory=list)
    decided_ms: list[float] = field(default_factory=list)
    distinct: int = 0
    received: int = 0
    late: int = 0
    timer: dict[str, Any] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)


async def deadline_second(
    api: httpx.AsyncClient,
    poller: httpx.AsyncClient,
    nats_url: str,
    processes: harness.Processes,
    count: int,
    keys: int,
    rate: float,
    lead: float,
    batch: int,
) -> Misses:
    """`count` deadlines in the second `lead` seconds ahead, under `rate` events/s."""
    phase = Misses()
    watcher = MissWatcher(count)
    await watcher.start(nats_url)
    try:
        noise_pool = harness.serialise_pool(
            noise_batch, NOISE_BATCH, math.ceil((lead + 1 + AFTER) * rate / NOISE_BATCH) + 1
        )
        phase.deadline = second = datetime.fromtimestamp(math.ceil(time.time() + lead), UTC)
        until = second.timestamp() + AFTER
        log(f"deadline second {second.isoformat()}; {count:,} keys due in it, {rate:g} events/s")

        async def record_lag() -> None:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                lag = (await health(poller))["store_consumer"]["lag"]
                phase.max_store_lag = max(phase.max_store_lag, int(lag or 0))

        async def background() -> None:
            started = time.monotonic()
            deadline = started + until - time.time()
            await harness.post_batches(
                api, phase.noise, noise_pool, noise_batch, NOISE_BATCH, NOISE_CONCURRENCY,
                deadline, rate=rate, prepare=stamp,
            )  # fmt: skip
            phase.noise.load_seconds = time.monotonic() - started

        async def due_keys() -> None:
            tally = harness.BatchLoad()
            batches = same_second_batches(count, second, batch)
            sizes = [min(batch, count - i) for i in range(0, count, batch)]
            await post_all(api, tally, batches, sizes, 1)
            phase.posted = tally.accepted
            phase.errors.update(tally.errors)
            found = await wait_stored(poller, STARTED, keys + count, time.monotonic(), "due")
            ahead = second.timestamp() - time.time()
            phase.stored_seconds_before_deadline = round(ahead, 2)
            phase.stored_before_deadline = found >= keys + count and ahead > 0
            log(f"due keys stored {ahead:.1f}s before the deadline second")

        metrics_before = await timer_metrics(poller)
        processes.mark()
        async with harness.every(0.5, record_lag):
            await asyncio.gather(background(), due_keys())
        phase.cpu_percent = processes.percent()
        offered = phase.noise.accepted + sum(phase.noise.errors.values()) * NOISE_BATCH
        if phase.noise.load_seconds:
            phase.noise_offered_rate = round(offered / phase.noise.load_seconds, 1)
        log(f"background load done: {phase.noise.accepted:,} accepted; waiting for misses")
        with contextlib.suppress(TimeoutError):
            left = max(0.0, second.timestamp() + MISS_WAIT - time.time())
            await asyncio.wait_for(watcher.all_in.wait(), left)
        await asyncio.sleep(1.0)  # any repeats
        phase.timer = timer_report(metrics_before, await timer_metrics(poller))
    finally:
        await watcher.stop()
    keys_seen: set[str] = set()
    for at, event in watcher.misses():
        payload = event["payload"]
        phase.received += 1
        key = orjson.dumps(payload["key"]).decode()
        if key in keys_seen:
            continue
        keys_seen.add(key)
        end = datetime.fromisoformat(payload["window"]["end"]).timestamp()
        phase.lags_ms.append((at - end) * 1000)
        phase.decided_ms.append(
            (datetime.fromisoformat(event["received"]).timestamp() - end) * 1000
        )
        phase.late += bool(payload.get("late"))
    phase.distinct = len(keys_seen)
    log(f"{phase.distinct:,} of {count:,} misses received")
    return phase


# --- the run ------------------------------------------------------------------------------


@dataclass
class Load:
    """What loading the keys measured."""

    tally: harness.BatchLoad = field(default_factory=harness.BatchLoad)
    post_seconds: float = 0.0
    stored: int = 0
    stored_seconds: float = 0.0
    first_occurred: datetime | None = None


async def load_keys(
    api: httpx.AsyncClient, poller: httpx.AsyncClient, keys: int, batch: int
) -> Load:
    load = Load()
    pool = key_batches(keys, batch)
    sizes = [min(batch, keys - i) for i in range(0, keys, batch)]
    stamped = Stamp()
    log(f"loading {keys:,} keys in {len(pool):,} POSTs of {batch}")
    started = time.monotonic()
    await post_all(api, load.tally, pool, sizes, CONCURRENCY, prepare=stamped)
    load.post_seconds = time.monotonic() - started
    load.first_occurred = stamped.first
    log(f"{load.tally.accepted:,} keys accepted in {load.post_seconds:.1f}s; waiting for the store")
    load.stored = await wait_stored(poller, STARTED, load.tally.accepted, started, "load")
    load.stored_seconds = time.monotonic() - started
    log(f"{load.stored:,} keys stored in {load.stored_seconds:.1f}s")
    return load


async def first_run(
    api_url: str,
    nats_url: str,
    engine: subprocess.Popen[bytes],
    home: Path,
    keys: int,
    count: int,
    rate: float,
    lead: float,
    batch: int,
) -> tuple[Load, Misses, dict[str, dict[str, float | None]]]:
    async with (
        harness.load_client(api_url, connections=16) as api,
        httpx.AsyncClient(base_url=api_url, timeout=harness.REQUEST_TIMEOUT) as poller,
    ):
        started = time.monotonic()
        await harness.wait_healthy(poller, engine, home, HEALTH_TIMEOUT, store_consumer=True)
        log(f"engine healthy in {time.monotonic() - started:.1f}s at {api_url}, NATS {nats_url}")
        processes = harness.Processes(engine.pid)
        load = await load_keys(api, poller, keys, batch)
        rss = {"after_load": processes.rss_mb()}
        misses = await deadline_second(
            api, poller, nats_url, processes, count, load.stored, rate, lead, batch
        )
        rss["after_misses"] = processes.rss_mb()
    return load, misses, rss


@dataclass
class Reload:
    """What restarting the engine measured."""

    stop_seconds: float = 0.0
    healthy_seconds: float | None = None
    reload_seconds: float | None = None
    reload_cpu_seconds: float | None = None
    next_due: str | None = None
    rss_mb: dict[str, float | None] = field(default_factory=dict)


async def wait_first_pass(
    api_url: str, engine: subprocess.Popen[bytes], home: Path, started: float, phase: Reload
) -> None:
    """Until /api/health is 200 and reports the timer's next due instant."""
    async with httpx.AsyncClient(base_url=api_url, timeout=harness.REQUEST_TIMEOUT) as client:
        await harness.wait_healthy(client, engine, home, RELOAD_TIMEOUT)
        phase.healthy_seconds = time.monotonic() - started
        while time.monotonic() - started < RELOAD_TIMEOUT:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                phase.next_due = (await health(client))["timers"]["next_due"]
            if phase.next_due is not None:
                phase.reload_seconds = time.monotonic() - started
                cpu = harness.cpu_seconds(engine.pid)
                phase.reload_cpu_seconds = round(cpu, 2) if cpu is not None else None
                return
            await asyncio.sleep(0.05)
        log("reload: the timer reported no next due instant")


def reload(home: Path, definitions: Path, stop_seconds: float) -> Reload:
    """Start the engine again on the same home; time it to its first timer pass. New ports:
    the old API port may still be held by closing connections (TIME_WAIT), and `tripwire up`
    will not start on a port it cannot bind."""
    phase = Reload(stop_seconds=stop_seconds)
    port, nats_port = free_port(), free_port()
    log("restarting the engine on the same home")
    started = time.monotonic()
    engine = harness.start_engine(port, home, nats_port=nats_port, automations=definitions)
    try:
        asyncio.run(wait_first_pass(f"http://127.0.0.1:{port}", engine, home, started, phase))
        if phase.reload_seconds is not None:
            log(f"reloaded in {phase.reload_seconds:.2f}s; next due {phase.next_due}")
        time.sleep(1.0)  # let it settle before reading its memory
        phase.rss_mb = harness.Processes(engine.pid).rss_mb()
    finally:
        harness.stop_engine(engine, home)
    return phase


def _rate(count: float, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds else None


def report(
    load: Load, misses: Misses, restart: Reload, count: int, rss: dict[str, Any]
) -> dict[str, Any]:
    expected_due = load.first_occurred + WITHIN if load.first_occurred else None
    due_error = (
        round((datetime.fromisoformat(restart.next_due) - expected_due).total_seconds(), 3)
        if restart.next_due and expected_due
        else None
    )
    lag = harness.percentiles(misses.lags_ms, PERCENTILES)
    noise = misses.noise
    return {
        "load": {
            "keys_accepted": load.tally.accepted,
            "keys_stored": load.stored,
            "post_seconds": round(load.post_seconds, 2),
            "accepted_per_s": _rate(load.tally.accepted, load.post_seconds),
            # From the first POST until the store held every key (and its window).
            "stored_seconds": round(load.stored_seconds, 2),
            "keys_per_s": _rate(load.stored, load.stored_seconds),
            "post_ms": harness.percentiles(load.tally.post_ms, (50, 99)),
            "errors": dict(load.tally.errors),
        },
        "misses": {
            "deadline_second": misses.deadline.isoformat(),
            "expected": count,
            "posted": misses.posted,
            "stored_before_deadline": misses.stored_before_deadline,
            "stored_seconds_before_deadline": misses.stored_seconds_before_deadline,
            "received": misses.received,
            "distinct": misses.distinct,
            "duplicates": misses.received - misses.distinct,
            "missing": count - misses.distinct,
            "late": misses.late,
            "errors": dict(misses.errors),
        },
        # The engine's own timer metrics over the deadline second and the load around it.
        "timer": misses.timer,
        # From a miss's deadline (payload.window.end) to its tripwire.sla.missed on the bus.
        "sla_lag_ms": lag,
        "sla_lag_min_ms": round(min(misses.lags_ms), 1) if misses.lags_ms else None,
        # Of that, from the deadline to the timer pass that decided the miss (the miss
        # event's `received`, stamped as the pass builds it); the rest is committing the
        # pass and publishing.
        "decided_lag_ms": harness.percentiles(misses.decided_ms, PERCENTILES),
        "background_load": {
            "event": NOISE,
            "offered_rate": misses.noise_offered_rate,
            "accepted": noise.accepted,
            "accepted_per_s": _rate(noise.accepted, noise.load_seconds),
            "load_seconds": round(noise.load_seconds, 2),
            "post_ms": harness.percentiles(noise.post_ms, (50, 99)),
            "max_store_lag": misses.max_store_lag,
            "cpu_percent": misses.cpu_percent,
            "errors": dict(noise.errors),
        },
        "reload": {
            "stop_seconds": round(restart.stop_seconds, 2),
            # From starting `tripwire up` again to /api/health 200 ...
            "healthy_seconds": round(restart.healthy_seconds, 2)
            if restart.healthy_seconds is not None
            else None,
            # ... and to the first timer pass (timers.next_due reported).
            "reload_seconds": round(restart.reload_seconds, 2)
            if restart.reload_seconds is not None
            else None,
            # CPU time the engine process had used by then (imports included): less
            # sensitive to a busy machine than the wall-clock figures.
            "reload_cpu_seconds": restart.reload_cpu_seconds,
            "next_due": restart.next_due,
            "expected_next_due": expected_due.isoformat() if expected_due else None,
            "next_due_error_seconds": due_error,
        },
        "rss_mb": {**rss, "after_reload": restart.rss_mb},
        "sla_lag_p99": lag["p99"],
    }


def run(
    keys: int = 100_000,
    same_second: int = 1000,
    rate: float = 1000.0,
    lead: float = 15.0,
    batch: int = 500,
    port: int | None = None,
) -> dict[str, Any]:
    """Load the keys, time the misses, restart the engine; return the result object."""
    if keys < 1 or same_second < 1 or rate <= 0 or batch < 1:
        raise ValueError("--keys, --same-second, --rate and --batch must be positive")
    if not 1 <= same_second <= 1111:
        raise ValueError("--same-second must be at most 1111 (0.9 ms apart in one second)")
    if lead < 5:
        raise ValueError("--lead must be at least 5 seconds")
    benchmarked = revision()  # before the run: the checkout may change while it runs
    port = port or free_port()
    nats_port = free_port()
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-sla-") as tmp:
        home = Path(tmp)
        definitions = write_sla(home / "automations")
        engine = harness.start_engine(port, home, nats_port=nats_port, automations=definitions)
        log(f"engine pid {engine.pid}, home {home}")
        try:
            load, misses, rss = asyncio.run(
                first_run(
                    f"http://127.0.0.1:{port}",
                    f"nats://127.0.0.1:{nats_port}",
                    engine,
                    home,
                    keys,
                    same_second,
                    rate,
                    lead,
                    batch,
                )
            )
        finally:
            stopping = time.monotonic()
            harness.stop_engine(engine, home)
            stop_seconds = time.monotonic() - stopping
        engine_log = {"first_run": log_summary(home / "engine.log")}
        restart = reload(home, definitions, stop_seconds)
        engine_log["restart"] = log_summary(home / "engine.log")
    result = report(load, misses, restart, same_second, rss)
    p99 = result.pop("sla_lag_p99")
    engine_rss = [r.get("engine") for r in (rss["after_load"], rss["after_misses"], restart.rss_mb)]
    peak = max((r for r in engine_rss if r is not None), default=None)
    reload_seconds = result["reload"]["reload_seconds"]
    return {
        "benchmark": "sla",
        "machine": harness.machine(with_cpu_model=True),
        "revision": benchmarked,
        "parameters": {
            "keys": keys,
            "same_second": same_second,
            "same_second_spacing_ms": SPACING.total_seconds() * 1000,
            "rate": rate,
            "lead_seconds": lead,
            "after_seconds": AFTER,
            "batch": batch,
            "load_concurrency": CONCURRENCY,
            "background_batch": NOISE_BATCH,
            "sla": f"duration, start {STARTED}, expect {FINISHED}, for_each "
            "prefect.resource.id, within 1h, no actions",
            "engine": "tripwire up (api, worker and sla roles in one process), SQLite",
        },
        **result,
        "targets": {
            "lag_p99_ms": TARGET_LAG_P99_MS,
            "lag_p99_met": p99 is not None
            and p99 < TARGET_LAG_P99_MS
            and result["misses"]["missing"] == 0,
            "reload_seconds": TARGET_RELOAD_SECONDS,
            "reload_met": reload_seconds is not None and reload_seconds < TARGET_RELOAD_SECONDS,
            # The whole `tripwire up` process (api and worker too): the sla role's ceiling.
            "rss_mb": TARGET_RSS_MB,
            "engine_peak_rss_mb": peak,
            "rss_met": peak is not None and peak < TARGET_RSS_MB,
        },
        # What the engine logged (at WARNING and up): nothing, when all is well.
        "engine_log": engine_log,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m bench.sla`."""
    parser = harness.argument_parser("bench.sla", __doc__)
    parser.add_argument(
        "--keys", type=int, default=100_000, help="open duration windows (default 100000)"
    )
    parser.add_argument(
        "--same-second", type=int, default=1000, help="deadlines in one second (default 1000)"
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="background events/s (default 1000)"
    )
    parser.add_argument(
        "--lead", type=float, default=15.0, help="seconds until the deadline second (15)"
    )
    parser.add_argument("--batch", type=int, default=500, help="events per POST (500)")
    parser.add_argument("--port", type=int, default=None, help="engine API port (default free)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; 0 when every key was stored, every miss arrived once and
    the restarted engine ran its timers."""
    args = parse_args(argv)
    result = harness.run_printed(
        lambda: run(args.keys, args.same_second, args.rate, args.lead, args.batch, args.port)
    )
    if isinstance(result, int):
        return result
    load, misses = result["load"], result["misses"]
    complete = load["keys_stored"] >= args.keys and misses["missing"] == 0
    exact = misses["duplicates"] == 0
    return 0 if complete and exact and result["reload"]["reload_seconds"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
