"""Actions benchmark: call-webhook action requests through one worker to a local receiver.

    python -m bench.actions [--count 20000] [--rate 500] [--seconds 20] [--port P]

Starts a webhook receiver (`python -m bench.receiver`, uvicorn + httptools, its own
process) and `tripwire up` on free ports with a fresh home and
TRIPWIRE_ALLOW_PRIVATE_URLS=true (the receiver is on loopback), with no automations.
The benchmark then plays the trigger side: it publishes `ActionRequest`s built with the
real model straight onto the actions stream (subject `tripwire.actions.requested`,
`Nats-Msg-Id` = request id), each a `call-webhook` POST to the receiver with no retries,
carrying a Prefect flow-run event as its triggering event. The body is `{"sent": <time of
publishing>, "n": <index>}`; the receiver records `now - sent` per request and counts the
distinct `n`, so repeats and losses show.

Phase A (throughput): `--count` requests published as fast as JetStream takes them
(PUBLISHERS batches of GROUP in flight); timed from the first publish to the receiver's
last arrival: `actions_per_s`. The worker's CPU and peak memory are sampled too.

Phase B (latency): `--rate` requests/s, a group every 10 ms, for `--seconds`; then until
every one arrived. The dispatch latency is from building and publishing a request to its
HTTP request arriving at the receiver (p50, p90, p99, max).

Progress goes to stderr; one JSON object with the results goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import nats
from uuid6 import uuid7

from actions.model import CallWebhook
from actions.request import ActionRequest, AutomationRef, FiringState
from bench import harness
from bench.harness import log
from bench.triggers import revision
from events.bus import Names
from events.embedded import free_port
from events.errors import BusUnavailable
from events.model import ReceivedEvent
from events.publisher import BatchPublisher

HEALTH_TIMEOUT = 60.0
RECEIVER_TIMEOUT = 20.0  # for the receiver to listen
ARRIVAL_TIMEOUT = 900.0  # at most this long for every request to arrive,
ARRIVAL_STALL = 30.0  # and never longer than this without the count moving
POLL_EVERY = 0.25
PUBLISHERS = 4  # phase A: batches in flight
GROUP = 100  # phase A: requests per batch
PACE = 0.01  # phase B: a group every 10 ms
PUBLISH_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
PERCENTILES = (50, 90, 99)
TARGET_ACTIONS_PER_S = 1_000
TARGET_P99_MS = 50.0
TARGET_P99_RATE = 500.0
NAMES = Names()  # the engine's default namespace, "tripwire"
AUTOMATION = AutomationRef(id=uuid4(), name="bench-webhook")


# --- the requests -------------------------------------------------------------------------


def addressed(batch: list[tuple[str, bytes]]) -> list[tuple[str, str, bytes]]:
    """Action requests as the publisher takes them: (subject, id, body)."""
    return [(NAMES.actions_subject, msg_id, body) for msg_id, body in batch]


def triggering_event() -> ReceivedEvent:
    """A Prefect 3 flow-run Failed event, as a reactive trigger's request carries it."""
    run, flow, deployment = uuid4(), uuid4(), uuid4()
    return ReceivedEvent.model_validate(
        {
            "id": str(uuid7()),
            "occurred": datetime.now(UTC).isoformat(),
            "event": "prefect.flow-run.Failed",
            "resource": {
                "prefect.resource.id": f"prefect.flow-run.{run}",
                "prefect.resource.name": "brisk-otter",
                "prefect.state-name": "Failed",
                "prefect.state-type": "FAILED",
                "prefect.run-count": "1",
            },
            "related": [
                {
                    "prefect.resource.id": f"prefect.flow.{flow}",
                    "prefect.resource.role": "flow",
                    "prefect.resource.name": "etl-orders",
                },
                {
                    "prefect.resource.id": f"prefect.deployment.{deployment}",
                    "prefect.resource.role": "deployment",
                    "prefect.resource.name": "etl-orders-prod",
                },
            ],
            "payload": {
                "intended": {"from": "RUNNING", "to": "FAILED"},
                "validated_state": {
                    "type": "FAILED",
                    "name": "Failed",
                    "message": "Flow run encountered an exception: ValueError: too few rows",
                },
            },
        }
    )


class Requests:
    """Action requests to the receiver, each built (and its `sent` taken) when asked for."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.event = triggering_event()
        self.made = 0

    def make(self) -> tuple[str, bytes]:
        """The next request: its id and its JSON."""
        n = self.made
        self.made += 1
        request = ActionRequest(
            id=uuid4(),
            automation=AUTOMATION,
            firing_id=uuid4(),
            state=FiringState.triggered,
            action_index=0,
            action=CallWebhook(url=self.url, json_body={"sent": time.time(), "n": n}, retries=0),
            triggered=datetime.now(UTC),
            triggering_event=self.event,
        )
        return str(request.id), request.model_dump_json(by_alias=True).encode()

    def group(self, size: int) -> list[tuple[str, bytes]]:
        return [self.make() for _ in range(size)]


# --- the receiver -------------------------------------------------------------------------


def start_receiver(port: int, home: Path) -> subprocess.Popen[bytes]:
    """`python -m bench.receiver` in its own session, output to home/receiver.log."""
    command = [sys.executable, "-m", "bench.receiver", "--port", str(port)]
    with (home / "receiver.log").open("wb") as output:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_receiver(process: subprocess.Popen[bytes]) -> None:
    """SIGINT and wait; then SIGKILL it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"the receiver (pid {process.pid}) did not stop; killing it")
            process.kill()
            process.wait()


async def stats(
    client: httpx.AsyncClient, latencies: bool = False, reset: bool = False
) -> dict[str, Any]:
    """The receiver's counts (and latencies); `reset` clears them after reading."""
    params = {"latencies": "1" if latencies else "0", "reset": "1" if reset else "0"}
    response = await client.get("/stats", params=params)
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


async def wait_receiver(
    client: httpx.AsyncClient, process: subprocess.Popen[bytes], home: Path
) -> None:
    deadline = time.monotonic() + RECEIVER_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_tail = (home / "receiver.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the receiver exited with code {process.returncode}:\n{log_tail}")
        with contextlib.suppress(httpx.HTTPError):
            await stats(client)
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the receiver did not listen within {RECEIVER_TIMEOUT:.0f}s")


class CpuMark:
    """CPU% of the engine, its nats-server and the receiver between two marks."""

    def __init__(self, engine: harness.Processes, receiver: int) -> None:
        self.engine = engine
        self.receiver = receiver
        self._before: float | None = None
        self._started = 0.0

    def mark(self) -> None:
        self.engine.mark()
        self._before = harness.cpu_seconds(self.receiver)
        self._started = time.monotonic()

    def percent(self) -> dict[str, float | None]:
        found = self.engine.percent()
        after = harness.cpu_seconds(self.receiver)
        elapsed = time.monotonic() - self._started
        found["receiver"] = (
            None
            if self._before is None or after is None
            else round(100 * (after - self._before) / elapsed, 1)
        )
        return found


# --- waiting for arrivals -----------------------------------------------------------------


@dataclass
class Arrivals:
    """How the receiver's count grew: (monotonic time, count) samples and the last stats."""

    samples: list[tuple[float, int]] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)
    complete: bool = False
    errors: Counter[str] = field(default_factory=Counter)


async def wait_arrivals(
    receiver: httpx.AsyncClient, expected: int, phase: str, started: float, arrivals: Arrivals
) -> None:
    """Poll the receiver until `expected` distinct requests arrived, it stalls or times out."""
    moved = time.monotonic()
    logged = moved
    last = arrivals.last.get("count", -1)
    while True:
        now = time.monotonic()
        if now - started > ARRIVAL_TIMEOUT or now - moved > ARRIVAL_STALL:
            log(f"{phase}: {last:,} of {expected:,} arrived; giving up waiting")
            return
        try:
            arrivals.last = await stats(receiver)
        except httpx.HTTPError as exc:
            arrivals.errors[f"poll_{type(exc).__name__}"] += 1
            await asyncio.sleep(POLL_EVERY)
            continue
        count = int(arrivals.last["count"])
        now = time.monotonic()
        arrivals.samples.append((now, count))
        if count != last:
            moved, last = now, count
        if int(arrivals.last["distinct"]) >= expected:
            arrivals.complete = True
            return
        if now - logged >= 2.0:
            logged = now
            log(f"{phase} t={now - started:5.1f}s arrived={count:>8,} of {expected:,}")
        await asyncio.sleep(POLL_EVERY)


def steady_rate(samples: list[tuple[float, int]], total: int) -> float | None:
    """Arrivals/s between 10% and 90% of `total` (no start-up, no tail)."""
    low = next((s for s in samples if s[1] >= total * 0.1), None)
    high = next((s for s in samples if s[1] >= total * 0.9), None)
    if low is None or high is None or high[0] <= low[0]:
        return None
    return round((high[1] - low[1]) / (high[0] - low[0]), 1)


# --- phase A: throughput ------------------------------------------------------------------


@dataclass
class PhaseA:
    """What the throughput phase measured."""

    count: int = 0
    first_publish: float = 0.0  # epoch seconds, as the receiver's arrival times
    publish_seconds: float = 0.0
    published: int = 0
    arrivals: Arrivals = field(default_factory=Arrivals)
    cpu_percent: dict[str, float | None] = field(default_factory=dict)
    consumer_pending_at_publish_end: int | None = None
    errors: Counter[str] = field(default_factory=Counter)


async def consumer_pending(js: Any) -> int | None:
    """Requests the worker has not yet acknowledged (its lag)."""
    with contextlib.suppress(Exception):
        info = await js.consumer_info(NAMES.actions_stream, f"{NAMES.namespace}-actions")
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
    return None


async def throughput(
    publisher: BatchPublisher,
    js: Any,
    receiver: httpx.AsyncClient,
    requests: Requests,
    cpu: CpuMark,
    count: int,
) -> PhaseA:
    """Phase A: publish `count` requests as fast as taken, time them to the last arrival."""
    phase = PhaseA(count=count)
    await stats(receiver, reset=True)
    groups = iter(range(0, count, GROUP))

    async def publish() -> None:
        for start in groups:
            batch = requests.group(min(GROUP, count - start))
            try:
                await publisher.publish(addressed(batch), PUBLISH_TIMEOUT)
            except BusUnavailable as exc:
                phase.errors[type(exc).__name__] += 1
                log(f"A: a batch was not published: {exc}")
                continue
            phase.published += len(batch)

    cpu.mark()
    started = time.monotonic()
    phase.first_publish = time.time()
    await asyncio.gather(*(publish() for _ in range(PUBLISHERS)))
    phase.publish_seconds = time.monotonic() - started
    phase.consumer_pending_at_publish_end = await consumer_pending(js)
    log(
        f"A: published {phase.published:,} in {phase.publish_seconds:.2f}s "
        f"({phase.published / phase.publish_seconds:,.0f}/s); worker lag "
        f"{phase.consumer_pending_at_publish_end}"
    )
    await wait_arrivals(receiver, phase.published, "A", started, phase.arrivals)
    phase.cpu_percent = cpu.percent()
    return phase


def report_a(phase: PhaseA) -> dict[str, Any]:
    last = phase.arrivals.last
    count, distinct = int(last.get("count", 0)), int(last.get("distinct", 0))
    arrived_at = last.get("last")
    elapsed = arrived_at - phase.first_publish if arrived_at is not None else None
    return {
        "published": phase.published,
        "published_per_s": round(phase.published / phase.publish_seconds, 1)
        if phase.publish_seconds
        else None,
        "publish_seconds": round(phase.publish_seconds, 2),
        "worker_lag_at_publish_end": phase.consumer_pending_at_publish_end,
        "arrived": count,
        "distinct": distinct,
        "duplicates": count - distinct,
        "missing": phase.published - distinct,
        "bad_bodies": last.get("bad"),
        "complete": phase.arrivals.complete,
        # From the first publish to the last arrival at the receiver.
        "elapsed_seconds": round(elapsed, 2) if elapsed else None,
        "actions_per_s": round(distinct / elapsed, 1) if elapsed else None,
        # Between 10% and 90% of the arrivals: the worker's steady rate.
        "actions_per_s_steady": steady_rate(phase.arrivals.samples, phase.published),
        "cpu_percent": phase.cpu_percent,
        "errors": dict(phase.errors + phase.arrivals.errors),
    }


# --- phase B: latency ---------------------------------------------------------------------


@dataclass
class PhaseB:
    """What the latency phase measured."""

    offered: int = 0
    published: int = 0
    load_seconds: float = 0.0
    publish_ms: list[float] = field(default_factory=list)
    arrivals: Arrivals = field(default_factory=Arrivals)
    latencies_ms: list[float] = field(default_factory=list)
    max_worker_lag: int = 0
    cpu_percent: dict[str, float | None] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)


async def latency(
    publisher: BatchPublisher,
    js: Any,
    receiver: httpx.AsyncClient,
    requests: Requests,
    cpu: CpuMark,
    rate: float,
    seconds: float,
) -> PhaseB:
    """Phase B: `rate` requests/s, a group every 10 ms; latencies from the receiver."""
    phase = PhaseB()
    await stats(receiver, reset=True)
    in_flight: set[asyncio.Task[None]] = set()

    async def publish(batch: list[tuple[str, bytes]]) -> None:
        sent = time.perf_counter()
        try:
            await publisher.publish(addressed(batch), PUBLISH_TIMEOUT)
        except BusUnavailable as exc:
            phase.errors[type(exc).__name__] += 1
            return
        phase.publish_ms.append((time.perf_counter() - sent) * 1000)
        phase.published += len(batch)

    async def record_lag() -> None:
        phase.max_worker_lag = max(phase.max_worker_lag, await consumer_pending(js) or 0)

    cpu.mark()
    started = time.monotonic()
    async with harness.every(0.5, record_lag):
        deadline = started + seconds
        tick = 0
        last_log = started
        while True:
            due = started + tick * PACE
            if due >= deadline:
                break
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            tick += 1
            size = int(min(tick * PACE, seconds) * rate) - phase.offered
            if size <= 0:
                continue
            phase.offered += size
            task = asyncio.create_task(publish(requests.group(size)))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            if time.monotonic() - last_log >= 5.0:
                last_log = time.monotonic()
                log(
                    f"B t={last_log - started:5.1f}s offered={phase.offered:>7,} "
                    f"lag={phase.max_worker_lag:,} (max so far)"
                )
        if in_flight:
            await asyncio.gather(*in_flight)
        phase.load_seconds = time.monotonic() - started
    await wait_arrivals(receiver, phase.published, "B", started, phase.arrivals)
    phase.cpu_percent = cpu.percent()
    final = await stats(receiver, latencies=True)
    phase.arrivals.last = final
    phase.latencies_ms = final.pop("latencies_ms")
    return phase


def report_b(phase: PhaseB, rate: float) -> dict[str, Any]:
    last = phase.arrivals.last
    count, distinct = int(last.get("count", 0)), int(last.get("distinct", 0))
    first_at, last_at = last.get("first"), last.get("last")
    span = last_at - first_at if first_at is not None and last_at is not None else None
    return {
        "offered": phase.offered,
        "offered_rate": round(phase.offered / phase.load_seconds, 1)
        if phase.load_seconds
        else None,
        "target_rate": rate,
        "published": phase.published,
        "load_seconds": round(phase.load_seconds, 2),
        # From the first arrival to the last: below the offered rate, the worker fell behind.
        "arrival_rate": round(distinct / span, 1) if span else None,
        "arrived": count,
        "distinct": distinct,
        "duplicates": count - distinct,
        "missing": phase.published - distinct,
        "bad_bodies": last.get("bad"),
        "complete": phase.arrivals.complete,
        # From building and publishing a request to its HTTP request at the receiver.
        "latency_ms": harness.percentiles(phase.latencies_ms, PERCENTILES),
        # Publishing a 10 ms group until JetStream acknowledged all of it.
        "publish_ack_ms": harness.percentiles(phase.publish_ms, PERCENTILES),
        "max_worker_lag": phase.max_worker_lag,
        "cpu_percent": phase.cpu_percent,
        "errors": dict(phase.errors + phase.arrivals.errors),
    }


# --- the run ------------------------------------------------------------------------------


def ledger_counts(home: Path) -> dict[str, Any]:
    """Requests per ledger status, and the most common errors, from the SQLite file."""
    path = home / "tripwire-actions.db"  # the ledger's own file under SQLite (see Settings)
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM action_ledger GROUP BY status"))
        errors = db.execute(
            "SELECT last_error, count(*) FROM action_ledger WHERE last_error IS NOT NULL "
            "GROUP BY last_error ORDER BY count(*) DESC LIMIT 5"
        ).fetchall()
        attempts = dict(db.execute("SELECT attempts, count(*) FROM action_ledger GROUP BY 1"))
    return {
        "by_status": statuses,
        "by_attempts": {str(k): v for k, v in attempts.items()},
        "top_errors": [{"error": e, "count": c} for e, c in errors],
    }


def log_summary(path: Path, kept: int = 10) -> dict[str, Any]:
    """How many lines the engine logged (at WARNING and up: nothing, when all is well),
    and the first `kept` distinct ones with their counts."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    seen: Counter[str] = Counter()
    for line in lines:
        if line.startswith((" ", "\t", "Traceback")):
            continue  # a traceback's body
        seen[line.strip()[:300]] += 1
    return {
        "lines": len(lines),
        "first_distinct": [{"line": k, "count": v} for k, v in list(seen.items())[:kept]],
    }


async def measure(
    api_url: str,
    nats_url: str,
    hook_url: str,
    receiver_url: str,
    engine: subprocess.Popen[bytes],
    receiver_process: subprocess.Popen[bytes],
    home: Path,
    count: int,
    rate: float,
    seconds: float,
) -> tuple[PhaseA, PhaseB, dict[str, float | None]]:
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=harness.REQUEST_TIMEOUT) as api,
        httpx.AsyncClient(base_url=receiver_url, timeout=harness.REQUEST_TIMEOUT) as receiver,
    ):
        started = time.monotonic()
        await wait_receiver(receiver, receiver_process, home)
        await harness.wait_healthy(api, engine, home, HEALTH_TIMEOUT, store_consumer=True)
        log(f"engine healthy in {time.monotonic() - started:.1f}s at {api_url}, NATS {nats_url}")
        connection = await nats.connect(nats_url, name="bench-actions")
        try:
            publisher = BatchPublisher(connection)
            await publisher.start()
            js = connection.jetstream()
            requests = Requests(hook_url)
            cpu = CpuMark(harness.Processes(engine.pid), receiver_process.pid)
            log(f"A: publishing {count:,} call-webhook requests as fast as taken")
            phase_a = await throughput(publisher, js, receiver, requests, cpu, count)
            log(f"B: {rate:g} requests/s for {seconds:g}s")
            phase_b = await latency(publisher, js, receiver, requests, cpu, rate, seconds)
            rss = cpu.engine.rss_mb()
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
    return phase_a, phase_b, rss


def run(
    count: int = 20_000, rate: float = 500.0, seconds: float = 20.0, port: int | None = None
) -> dict[str, Any]:
    """Run both phases against a new engine and receiver, and return the result object."""
    if count < 1 or rate <= 0 or seconds <= 0:
        raise ValueError("--count, --rate and --seconds must be positive")
    benchmarked = revision()
    port = port or free_port()
    nats_port, receiver_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-actions-") as tmp:
        home = Path(tmp)
        receiver = start_receiver(receiver_port, home)
        try:
            engine = harness.start_engine(
                port, home, nats_port=nats_port, env={"TRIPWIRE_ALLOW_PRIVATE_URLS": "true"}
            )
            log(f"engine pid {engine.pid}, receiver pid {receiver.pid}, home {home}")
            try:
                phase_a, phase_b, rss = asyncio.run(
                    measure(
                        f"http://127.0.0.1:{port}",
                        f"nats://127.0.0.1:{nats_port}",
                        f"http://127.0.0.1:{receiver_port}/hook",
                        f"http://127.0.0.1:{receiver_port}",
                        engine,
                        receiver,
                        home,
                        count,
                        rate,
                        seconds,
                    )
                )
                ledger = ledger_counts(home)
            finally:
                harness.stop_engine(engine, home)
            engine_log = log_summary(home / "engine.log")
        finally:
            stop_receiver(receiver)
    a, b = report_a(phase_a), report_b(phase_b, rate)
    p99 = b["latency_ms"]["p99"]
    return {
        "benchmark": "actions",
        "machine": harness.machine(with_cpu_model=True),
        "revision": benchmarked,
        "settings": {
            "count": count,
            "rate": rate,
            "seconds": seconds,
            "action": "call-webhook POST, retries 0, json body, a triggering event",
            "action_concurrency": "engine default (TRIPWIRE_ACTION_CONCURRENCY)",
            "phase_a_publishers": PUBLISHERS,
            "phase_a_group": GROUP,
            "phase_b_group_every_ms": PACE * 1000,
            "receiver": "bench.receiver (uvicorn, httptools, uvloop), own process",
        },
        "throughput": a,
        "latency": b,
        "targets": {
            "actions_per_s": TARGET_ACTIONS_PER_S,
            "actions_per_s_met": (a["actions_per_s"] or 0) >= TARGET_ACTIONS_PER_S,
            "p99_ms_at_500_per_s": TARGET_P99_MS,
            "p99_met": p99 is not None and p99 < TARGET_P99_MS and rate >= TARGET_P99_RATE,
        },
        "ledger": ledger,
        "engine_log": engine_log,
        "engine": {
            "cpu_percent_throughput": a["cpu_percent"],
            "cpu_percent_latency": b["cpu_percent"],
            "peak_rss_mb": rss,
        },
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m bench.actions`."""
    parser = harness.argument_parser("bench.actions", __doc__)
    parser.add_argument(
        "--count", type=int, default=20_000, help="phase A requests (default 20000)"
    )
    parser.add_argument("--rate", type=float, default=500.0, help="phase B requests/s (500)")
    parser.add_argument("--seconds", type=float, default=20.0, help="phase B duration (20)")
    parser.add_argument("--port", type=int, default=None, help="engine API port (default free)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; 0 when every request arrived exactly once in both phases."""
    args = parse_args(argv)
    result = harness.run_printed(lambda: run(args.count, args.rate, args.seconds, args.port))
    if isinstance(result, int):
        return result
    a, b = result["throughput"], result["latency"]
    exact = all(p["missing"] == 0 and p["duplicates"] == 0 for p in (a, b))
    return 0 if exact and a["complete"] and b["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
