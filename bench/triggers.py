"""Triggers benchmark: events through the whole pipeline (ingest, store, evaluate, fire).

    python -m bench.triggers [--seconds 30] [--rate 1000,5000] [--automations 1000]
                             [--candidates 100] [--batch 500] [--port P] [--processes N]

Writes `--automations` automations to a temporary folder and starts `tripwire up
--automations FOLDER` on a free port (and a known embedded NATS port) with a fresh home,
in its default topology (a process per core, at most 3) or `--processes N`.
`--candidates` of them expect the Prefect flow-run events the benchmark sends, with
`match`, `match_related` (some on flows that are never sent), `where`, `for_each`,
`after`, Proactive postures and thresholds 1 to 5 within 10m; one of them, the latency
probe, fires on every `prefect.flow-run.Failed` of the flow `bench-probe`. The rest
expect `vendor.<n>.…` events that never come. Every action is `do-nothing`. The events
are Prefect 3 flow-run state events of ~2,000 runs over 20 flows; run ids change on every
pass over them, so windows keyed by run keep being created, as with real runs, while the
flows, deployments, work queues and pools keep their ids, as in Prefect.

Phase A (throughput): `--batch`-event POSTs, 4 in flight, as fast as the engine accepts
them for `--seconds`; then the backlog drains with the API idle. The drain rate is what
one worker evaluates and stores per second (`evaluated_and_stored_per_s`).

Phase B (latency), once per rate of `--rate`: that many events/s, paced in POSTs every
10 ms, for `--seconds`; one event in 20 is a probe. A NATS subscription on the actions
subject times each probe from the 202 of its POST ("accepted") to its action request on
the bus ("published").

Progress goes to stderr; one JSON object with the results goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
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
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import httpx
import nats
import orjson
import yaml
from nats.aio.msg import Msg
from uuid6 import uuid7

from bench import harness
from bench.harness import log
from events.embedded import EmbeddedNats, free_port

HEALTH_TIMEOUT = 120.0  # applying 1,000 automations at start-up takes a moment
DRAIN_TIMEOUT = 1800.0  # at most this long after phase A for the backlog to drain,
DRAIN_STALL = 30.0  # and never longer than this without the lag moving
PROBE_WAIT = 20.0  # how long to wait after phase B for the last probes' action requests
CONCURRENCY = 4  # phase A: POSTs in flight
MAX_POOL_RATE = 25_000  # phase A: events/s the pre-serialised pool covers
PACE = 0.01  # phase B: one POST every 10 ms
PROBE_EVERY = 20  # phase B: every 20th event is a probe
ACTIONS_SUBJECT = "tripwire.actions.requested"
PERCENTILES = (50, 95, 99)
TARGET_EVALUATED_PER_S = 10_000
TARGET_P99_MS = {1000.0: 50.0, 5000.0: 100.0}  # p99 accepted -> action request, per rate
TARGET_DURING_LOAD = 0.5  # storing under full-speed ingest, as a share of the drain rate

ID = b"@ID@"
TIME = b"@TS@"
GENERATION = b"@GEN@"  # the last 12 hex digits of a run id: new runs on every pass

# --- the workload -------------------------------------------------------------------------

FLOWS = (
    "etl-orders",
    "etl-sales",
    "etl-customers",
    "etl-inventory",
    "etl-payments",
    "etl-shipments",
    "dbt-build",
    "dbt-snapshot",
    "ml-train",
    "ml-score",
    "reverse-etl-crm",
    "report-daily",
    "report-weekly",
    "ingest-clickstream",
    "ingest-ads",
    "backfill-ledger",
    "sync-warehouse",
    "export-finance",
    "quality-checks",
    "cleanup-tmp",
)
POOLS = (("k8s-pool", "kubernetes"), ("process-pool", "process"), ("docker-pool", "docker"))
ADJECTIVES = ("didactic", "rainbow", "tuscan", "amber", "brisk", "calm", "daring", "eager")
ANIMALS = ("bulldog", "jaybird", "guppy", "otter", "lynx", "heron", "marmot", "newt")
FINAL = (("Completed", 72), ("Failed", 15), ("Crashed", 5), ("Cancelled", 8))
ERRORS = (
    "ValueError: too few rows",
    "TimeoutError: the warehouse did not answer within 300s",
    "KeyError: 'customer_id'",
    "ConnectionError: connection reset by peer",
    "MemoryError: the worker ran out of memory",
)
PROBE_FLOW = "bench-probe"
PROBE_AUTOMATION = "bench-latency-probe"
NEVER_SENT_FLOW = "legacy-flow-{n}"


def _flow_run_event(
    state: str,
    state_type: str,
    previous: tuple[str, str] | None,
    run_id: str,
    run_name: str,
    run_count: int,
    related: list[dict[str, str]],
    message: str = "",
) -> dict[str, Any]:
    """A `prefect.flow-run.<state>` event as Prefect 3 emits it, id and time placeholders."""
    validated: dict[str, str] = {"type": state_type, "name": state}
    if message:
        validated["message"] = message
    return {
        "id": ID.decode(),
        "occurred": TIME.decode(),
        "event": f"prefect.flow-run.{state}",
        "resource": {
            "prefect.resource.id": f"prefect.flow-run.{run_id}",
            "prefect.resource.name": run_name,
            "prefect.run-count": str(run_count),
            "prefect.state-message": message,
            "prefect.state-name": state,
            "prefect.state-timestamp": TIME.decode(),
            "prefect.state-type": state_type,
        },
        "related": related,
        "payload": {
            "intended": {"from": previous[0] if previous else None, "to": state_type},
            "initial_state": {"type": previous[0], "name": previous[1]} if previous else None,
            "validated_state": validated,
        },
        "follows": None,
    }


def _object_id(kind: str, name: str) -> str:
    """A flow's, deployment's, queue's or pool's id: the same for every run that uses it,
    as in Prefect (only the run ids are new per run)."""
    return f"prefect.{kind}.{uuid5(NAMESPACE_URL, f'tripwire-bench/{kind}/{name}')}"


def _related(flow: str, rng: random.Random, deployed: bool) -> list[dict[str, str]]:
    related = [
        {
            "prefect.resource.id": _object_id("flow", flow),
            "prefect.resource.role": "flow",
            "prefect.resource.name": flow,
        }
    ]
    if deployed:  # runs of deployments carry 4 related resources; ad-hoc runs only the flow
        pool, kind = rng.choice(POOLS)
        related += [
            {
                "prefect.resource.id": _object_id("deployment", flow),
                "prefect.resource.role": "deployment",
                "prefect.resource.name": f"{flow}-prod",
            },
            {
                "prefect.resource.id": _object_id("work-queue", pool),
                "prefect.resource.role": "work-queue",
                "prefect.resource.name": "default",
            },
            {
                "prefect.resource.id": _object_id("work-pool", pool),
                "prefect.resource.role": "work-pool",
                "prefect.resource.name": pool,
                "prefect.work-pool.type": kind,
            },
        ]
    return related


def run_events(rng: random.Random, flow: str, deployed: bool = True) -> list[dict[str, Any]]:
    """The flow-run events of one run: Scheduled, sometimes Late, Pending, Running, a final
    state (Completed, Failed, Crashed or Cancelled); sometimes retried (run count 2)."""
    run_id = str(uuid4())[:24] + GENERATION.decode()
    name = f"{rng.choice(ADJECTIVES)}-{rng.choice(ANIMALS)}"
    related = _related(flow, rng, deployed)
    runs = 2 if rng.random() < 0.03 else 1
    final = rng.choices([s for s, _ in FINAL], weights=[w for _, w in FINAL])[0]
    steps: list[tuple[str, str, int, str]] = [("Scheduled", "SCHEDULED", 0, "")]
    if rng.random() < 0.08:
        steps.append(("Late", "SCHEDULED", 0, ""))
    steps += [("Pending", "PENDING", 0, ""), ("Running", "RUNNING", runs, "")]
    message = {
        "Failed": f"Flow run encountered an exception: {rng.choice(ERRORS)}",
        "Crashed": "Flow run infrastructure exited with non-zero status code 137.",
    }.get(final, "")
    steps.append((final, final.upper(), runs, message))
    events = []
    previous: tuple[str, str] | None = None
    for state, state_type, count, text in steps:
        events.append(
            _flow_run_event(state, state_type, previous, run_id, name, count, related, text)
        )
        previous = (state_type, state)
    return events


class Workload:
    """Pre-serialised flow-run events of `runs` runs over 20 flows, shuffled; each is sent
    with a new UUIDv7 id, and run ids change on every pass over the events (so windows per
    run keep being created, as with real runs); the send time is filled in per batch."""

    def __init__(self, runs: int = 2000, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        events = []
        for _ in range(runs):
            events += run_events(self.rng, self.rng.choice(FLOWS), self.rng.random() < 0.8)
        self.rng.shuffle(events)
        self.templates = [orjson.dumps(e) for e in events]
        self.count = 0
        self.probe_related = _related(PROBE_FLOW, self.rng, True)

    def next_event(self) -> bytes:
        generation, index = divmod(self.count, len(self.templates))
        self.count += 1
        event = self.templates[index].replace(GENERATION, b"%012x" % generation)
        return event.replace(ID, str(uuid7()).encode())

    def batch(self, size: int) -> bytes:
        """A JSON array of `size` events, the time still a placeholder (see `stamp`)."""
        return b"[" + b",".join(self.next_event() for _ in range(size)) + b"]"

    def probe(self) -> tuple[str, bytes]:
        """A Failed event of a new run of the probe flow: the probe automation fires on it."""
        event_id = str(uuid7())
        name = f"{self.rng.choice(ADJECTIVES)}-{self.rng.choice(ANIMALS)}"
        event = _flow_run_event(
            "Failed",
            "FAILED",
            ("RUNNING", "Running"),
            str(uuid4()),
            name,
            1,
            self.probe_related,
            f"Flow run encountered an exception: {ERRORS[0]}",
        )
        return event_id, orjson.dumps(event).replace(ID, event_id.encode())


def stamp(body: bytes) -> bytes:
    """Fill in now as `occurred` (and the state timestamp) of every event in the body."""
    return body.replace(TIME, datetime.now(UTC).isoformat().encode())


# --- the automations ----------------------------------------------------------------------

RUN = {"prefect.resource.id": "prefect.flow-run.*"}
DO_NOTHING = [{"type": "do-nothing"}]


def _flow(name: str | list[str]) -> dict[str, Any]:
    return {"prefect.resource.role": "flow", "prefect.resource.name": name}


def _candidate(i: int) -> tuple[str, dict[str, Any]]:
    """Candidate automation `i` (1-based): one of ten kinds, cycling over the flows."""
    flow = FLOWS[(i // 10) % len(FLOWS)]
    threshold = 1 + i % 5
    kind = i % 10
    if kind == 0:  # each run of one flow that failed for want of memory
        return "run-out-of-memory", {
            "match": RUN,
            "match_related": _flow(flow),
            "expect": ["prefect.flow-run.Failed"],
            "where": "contains(payload.validated_state.message, 'MemoryError')",
            "for_each": ["prefect.resource.id"],
            "threshold": 1,
            "within": "10m",
        }
    if kind == 1:  # a group of flows keeps failing: at most once per flow per window
        return "flows-keep-failing", {
            "match": RUN,
            "match_related": _flow(flow.split("-")[0] + "-*"),
            "expect": ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"],
            "for_each": ["related:flow:prefect.resource.name"],
            "threshold": max(threshold, 3),
            "within": "10m",
        }
    if kind == 2:  # a flow that is never sent: never matches
        return "legacy-flow-failed", {
            "match": RUN,
            "match_related": _flow(NEVER_SENT_FLOW.format(n=i)),
            "expect": ["prefect.flow-run.Failed"],
            "where": "payload.validated_state.type == 'FAILED'",
            "threshold": threshold,
            "within": "10m",
        }
    if kind == 3:  # a retried run completed
        return "retried-then-completed", {
            "match": RUN,
            "match_related": _flow(flow),
            "expect": ["prefect.flow-run.Completed"],
            "where": 'to_number(resource."prefect.run-count") > `1`',
            "for_each": ["prefect.resource.id"],
            "threshold": 1,
            "within": "10m",
        }
    if kind == 4:  # busy deployments: any flow-run event, per deployment
        return "deployment-busy", {
            "match": RUN,
            "match_related": {"prefect.resource.role": "deployment"},
            "expect": ["prefect.flow-run.*"],
            "for_each": ["related:deployment:prefect.resource.name"],
            "threshold": 5,
            "within": "10m",
        }
    if kind == 5:  # crashes on Kubernetes pools
        return "k8s-crashes", {
            "match": {**RUN, "prefect.state-type": "CRASHED"},
            "match_related": {
                "prefect.resource.role": "work-pool",
                "prefect.work-pool.type": "kubernetes",
            },
            "expect": ["prefect.flow-run.Crashed"],
            "where": "payload.validated_state.type == 'CRASHED'",
            "threshold": max(threshold, 2),
            "within": "10m",
        }
    if kind == 6:  # a run that started must complete within an hour (never fires here)
        return "run-not-completed", {
            "match": RUN,
            "match_related": _flow(flow),
            "after": ["prefect.flow-run.Running"],
            "expect": ["prefect.flow-run.Completed"],
            "for_each": ["prefect.resource.id"],
            "posture": "Proactive",
            "threshold": 1,
            "within": "1h",
        }
    if kind == 7:  # failures outside the two main ETLs, per flow
        return "other-flows-failing", {
            "match": {**RUN, "prefect.state-type": ["FAILED", "CRASHED"]},
            "match_related": _flow(["!etl-orders", "!etl-sales"]),
            "expect": ["prefect.flow-run.Failed"],
            "for_each": ["related:flow:prefect.resource.name"],
            "threshold": 4,
            "within": "10m",
        }
    if kind == 8:  # late runs, per deployment
        return "deployments-late", {
            "match": RUN,
            "match_related": {"prefect.resource.role": "deployment", "prefect.resource.name": "*"},
            "expect": ["prefect.flow-run.Late"],
            "for_each": ["related:deployment:prefect.resource.name"],
            "threshold": max(threshold, 2),
            "within": "10m",
        }
    return "runs-cancelled", {  # every flow-run event, filtered by `where`, per flow
        "match": RUN,
        "expect": ["prefect.flow-run.*"],
        "where": "payload.validated_state.type == 'CANCELLED' && "
        "payload.intended.from == 'RUNNING'",
        "for_each": ["related:flow:prefect.resource.name"],
        "threshold": max(threshold, 2),
        "within": "10m",
    }


def _never_matched(n: int) -> dict[str, Any]:
    """An automation on vendor events that are never sent."""
    trigger: dict[str, Any] = {
        "expect": [f"vendor.{n}.thing.happened"],
        "threshold": 1 + n % 5,
        "within": "10m",
    }
    if n % 10 == 0:
        trigger["expect"] = [f"vendor.{n}.*.failed"]
    if n % 3 == 0:
        trigger["match"] = {"prefect.resource.id": f"vendor.{n}.*"}
    if n % 5 == 0:
        trigger["for_each"] = ["prefect.resource.id"]
    if n % 7 == 0:
        trigger["where"] = "payload.status == 'error'"
    return trigger


def automations(total: int, candidates: int) -> list[dict[str, Any]]:
    """`total` automations: the probe, `candidates - 1` more candidates, the rest never
    matched."""
    found: list[dict[str, Any]] = [
        {
            "name": PROBE_AUTOMATION,
            "description": "Every failed run of bench-probe (the latency probe)",
            "trigger": {
                "type": "event",
                "match": RUN,
                "match_related": _flow(PROBE_FLOW),
                "expect": ["prefect.flow-run.Failed"],
                "where": "payload.validated_state.type == 'FAILED'",
                "for_each": ["prefect.resource.id"],
                "posture": "Reactive",
                "threshold": 1,
                "within": "10m",
            },
            "actions": DO_NOTHING,
        }
    ]
    for i in range(1, candidates):
        kind, trigger = _candidate(i)
        found.append(
            {
                "name": f"bench-{i:04d}-{kind}",
                "tags": ["bench", "candidate"],
                "trigger": {"type": "event", "posture": "Reactive", **trigger},
                "actions": DO_NOTHING,
            }
        )
    for n in range(total - candidates):
        found.append(
            {
                "name": f"bench-vendor-{n:04d}",
                "tags": ["bench"],
                "trigger": {"type": "event", "posture": "Reactive", **_never_matched(n)},
                "actions": DO_NOTHING,
            }
        )
    return found


def write_automations(folder: Path, total: int, candidates: int) -> Path:
    """The automations as one YAML file in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench-automations.yaml"
    body = {"automations": automations(total, candidates)}
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


# --- the engine ---------------------------------------------------------------------------


async def lag(client: httpx.AsyncClient) -> int:
    """Events on the stream the worker has not yet stored and evaluated."""
    response = await client.get("/api/health")
    return int(response.json()["store_consumer"]["lag"] or 0)


# --- action requests ----------------------------------------------------------------------


class ActionWatcher:
    """A core NATS subscription on the actions subject: it sees every action request the
    worker publishes to JetStream. Probe requests are timed by their triggering event id."""

    def __init__(self) -> None:
        self.requests = 0
        self.firings: set[str] = set()
        self.by_automation: Counter[str] = Counter()
        self.probe_published: dict[str, float] = {}
        self._connection: Any = None

    async def start(self, url: str) -> None:
        self._connection = await nats.connect(url, name="bench-triggers")
        await self._connection.subscribe(ACTIONS_SUBJECT, cb=self._on_request)
        await self._connection.flush()

    async def stop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()

    async def _on_request(self, msg: Msg) -> None:
        at = time.perf_counter()
        request = orjson.loads(msg.data)
        self.requests += 1
        self.firings.add(request["firing_id"])
        name = request["automation"]["name"]
        self.by_automation[name] += 1
        event = request.get("triggering_event") or {}
        if name == PROBE_AUTOMATION and "id" in event:
            self.probe_published.setdefault(str(UUID(event["id"])), at)

    def snapshot(self) -> tuple[int, int]:
        return self.requests, len(self.firings)


# --- phase A: throughput ------------------------------------------------------------------


@dataclass
class PhaseA(harness.BatchLoad):
    """What the throughput phase measured."""

    stored_before: int = 0
    lag_at_load_end: int = 0
    stored_after_drain: int = 0
    drain_seconds: float | None = None
    drain_lag: list[tuple[float, int]] = field(default_factory=list)  # (time, lag)
    sent_events_stored: int = 0
    cpu_percent_load: dict[str, float | None] = field(default_factory=dict)
    cpu_percent_drain: dict[str, float | None] = field(default_factory=dict)
    requests: int = 0
    firings: int = 0


async def _log_lag(client: httpx.AsyncClient, started: float, accepted: int) -> None:
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        log(
            f"A t={time.monotonic() - started:5.1f}s accepted={accepted:>9,} "
            f"lag={await lag(client):>9,}"
        )


async def throughput(
    api: httpx.AsyncClient,
    poller: httpx.AsyncClient,
    workload: Workload,
    pool: list[bytes],
    watcher: ActionWatcher,
    processes: harness.Processes,
    seconds: float,
    batch: int,
) -> PhaseA:
    """Phase A: POST as fast as accepted, then let the worker drain the backlog."""
    phase = PhaseA()
    requests_before, firings_before = watcher.snapshot()
    phase.stored_before = await harness.stored_total(poller)
    started = time.monotonic()
    deadline = started + seconds
    processes.mark()
    async with harness.every(1.0, lambda: _log_lag(poller, started, phase.accepted)):
        await harness.post_batches(
            api, phase, pool, workload.batch, batch, CONCURRENCY, deadline, prepare=stamp
        )
    phase.load_seconds = time.monotonic() - started
    phase.cpu_percent_load = processes.percent()
    phase.stored_at_load_end = await harness.stored_total(poller)
    phase.lag_at_load_end = await lag(poller)
    log(
        f"A: load done in {phase.load_seconds:.1f}s: accepted {phase.accepted:,}, "
        f"stored {phase.stored_at_load_end - phase.stored_before:,}, lag "
        f"{phase.lag_at_load_end:,}; draining"
    )
    drain_started = time.monotonic()
    processes.mark()
    moved, last, logged = drain_started, phase.lag_at_load_end, drain_started
    phase.drain_lag.append((drain_started, last))
    while True:
        now = time.monotonic()
        if now - drain_started > DRAIN_TIMEOUT or now - moved > DRAIN_STALL:
            log(f"A: the backlog did not drain (lag {last:,})")
            break
        await asyncio.sleep(0.25)
        try:
            current = await lag(poller)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            phase.errors[f"poll_{type(exc).__name__}"] += 1
            continue
        if current != last:
            moved, last = time.monotonic(), current
            phase.drain_lag.append((moved, current))
        if current == 0:
            phase.drain_seconds = time.monotonic() - drain_started
            break
        if moved - logged >= 2.0:
            logged = moved
            log(f"A: draining t={moved - started:5.1f}s lag={current:>9,}")
    phase.cpu_percent_drain = processes.percent()
    phase.stored_after_drain = await harness.stored_total(poller)
    phase.sent_events_stored = await harness.stored_total(poller, only_sent=True)
    requests, firings = watcher.snapshot()
    phase.requests, phase.firings = requests - requests_before, firings - firings_before
    if phase.drain_seconds is not None:
        log(
            f"A: drained {phase.stored_after_drain - phase.stored_at_load_end:,} events in "
            f"{phase.drain_seconds:.1f}s; {phase.firings:,} firings"
        )
    return phase


# --- phase B: latency ---------------------------------------------------------------------


@dataclass
class PhaseB:
    """What the latency phase measured."""

    offered: int = 0
    accepted: int = 0
    load_seconds: float = 0.0
    probes_sent: dict[str, float] = field(default_factory=dict)
    probes_accepted: dict[str, float] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    post_ms: list[float] = field(default_factory=list)
    max_lag: int = 0
    cpu_percent: dict[str, float | None] = field(default_factory=dict)
    requests: int = 0
    firings: int = 0


async def latency(
    api: httpx.AsyncClient,
    poller: httpx.AsyncClient,
    workload: Workload,
    watcher: ActionWatcher,
    processes: harness.Processes,
    seconds: float,
    rate: float,
) -> PhaseB:
    """Phase B: `rate` events/s in a POST every 10 ms; probes timed to their action request."""
    phase = PhaseB()
    requests_before, firings_before = watcher.snapshot()
    in_flight: set[asyncio.Task[None]] = set()

    async def post(body: bytes, count: int, probes: list[str]) -> None:
        sent = time.perf_counter()
        for probe in probes:
            phase.probes_sent[probe] = sent
        try:
            response = await api.post("/api/events", content=body, headers=harness.JSON_HEADERS)
        except httpx.HTTPError as exc:
            phase.errors[type(exc).__name__] += 1
            return
        accepted = time.perf_counter()
        phase.post_ms.append((accepted - sent) * 1000)
        if response.status_code != 202:
            phase.errors[f"http_{response.status_code}"] += 1
            return
        phase.accepted += count
        for probe in probes:
            phase.probes_accepted[probe] = accepted

    async def record_lag() -> None:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            phase.max_lag = max(phase.max_lag, await lag(poller))

    async with harness.every(0.5, record_lag):
        started = time.monotonic()
        deadline = started + seconds
        processes.mark()
        tick = 0
        last_log = started
        while True:
            due = started + tick * PACE
            now = time.monotonic()
            if due >= deadline:
                break
            if due > now:
                await asyncio.sleep(due - now)
            tick += 1
            count = int(min(tick * PACE, seconds) * rate) - phase.offered
            if count <= 0:
                continue
            parts: list[bytes] = []
            probes: list[str] = []
            for _ in range(count):
                phase.offered += 1
                if phase.offered % PROBE_EVERY == 0:
                    probe_id, body = workload.probe()
                    probes.append(probe_id)
                    parts.append(body)
                else:
                    parts.append(workload.next_event())
            body = stamp(b"[" + b",".join(parts) + b"]")
            task = asyncio.create_task(post(body, count, probes))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            if time.monotonic() - last_log >= 5.0:
                last_log = time.monotonic()
                log(
                    f"B t={last_log - started:5.1f}s offered={phase.offered:>7,} "
                    f"accepted={phase.accepted:>7,} probes timed={len(watcher.probe_published):,}"
                )
        if in_flight:
            await asyncio.gather(*in_flight)
        phase.load_seconds = time.monotonic() - started
        phase.cpu_percent = processes.percent()
    waiting = set(phase.probes_accepted)
    wait_until = time.monotonic() + PROBE_WAIT
    while time.monotonic() < wait_until:
        if waiting <= watcher.probe_published.keys():
            break
        await asyncio.sleep(0.1)
    requests, firings = watcher.snapshot()
    phase.requests, phase.firings = requests - requests_before, firings - firings_before
    return phase


# --- results ------------------------------------------------------------------------------


def revision() -> str | None:
    """The git commit benchmarked, with "+dirty" when the checkout has changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, check=True
        ).stdout.decode()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit.strip() + ("+dirty" if dirty.strip() else "")


def by_kind(counts: Counter[str]) -> Counter[str]:
    """Counts per automation name folded into kinds (bench-0001-<kind>)."""
    kinds: Counter[str] = Counter()
    for name, count in counts.items():
        parts = name.split("-", 2)
        kind = parts[1] if parts[1] == "vendor" else parts[-1]
        kinds["probe" if name == PROBE_AUTOMATION else kind] += count
    return kinds


def _rate(count: float, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds else None


def _window_rate(samples: list[tuple[float, int]], first: bool, span: float = 30.0) -> float | None:
    """How fast the lag fell over the first (or last) `span` seconds of the drain."""
    if len(samples) < 2 or samples[-1][0] - samples[0][0] < 2 * span:
        return None
    if first:
        start = samples[0]
        end = next(s for s in samples if s[0] - start[0] >= span)
    else:
        end = samples[-1]
        start = next(s for s in reversed(samples) if end[0] - s[0] >= span)
    return round((start[1] - end[1]) / (end[0] - start[0]), 1)


def report_a(phase: PhaseA) -> dict[str, Any]:
    drained = phase.stored_after_drain - phase.stored_at_load_end
    total = phase.stored_after_drain - phase.stored_before
    drain_rate = _rate(drained, phase.drain_seconds)
    overall = phase.load_seconds + phase.drain_seconds if phase.drain_seconds is not None else None
    return {
        "accepted": phase.accepted,
        "accepted_per_s": _rate(phase.accepted, phase.load_seconds),
        # One worker alone on the backlog (the API idle): its evaluate-and-store capacity.
        "evaluated_and_stored_per_s": drain_rate,
        "evaluated_and_stored_per_s_during_load": _rate(
            phase.stored_at_load_end - phase.stored_before, phase.load_seconds
        ),
        "drain_per_s": drain_rate,
        # The drain slows down as the tables grow: its first and its last 30 seconds.
        "drain_per_s_first_30s": _window_rate(phase.drain_lag, first=True),
        "drain_per_s_last_30s": _window_rate(phase.drain_lag, first=False),
        "evaluated_and_stored_per_s_overall": _rate(total, overall),
        "load_seconds": round(phase.load_seconds, 2),
        "lag_at_load_end": phase.lag_at_load_end,
        "drain_seconds": round(phase.drain_seconds, 2) if phase.drain_seconds else None,
        "stored": total,
        "sent_events_stored": phase.sent_events_stored - phase.stored_before,
        "engine_events_stored": total - (phase.sent_events_stored - phase.stored_before),
        "action_requests": phase.requests,
        "firings": phase.firings,
        "post_ms": harness.percentiles(phase.post_ms, PERCENTILES),
        "cpu_percent_during_load": phase.cpu_percent_load,
        "cpu_percent_during_drain": phase.cpu_percent_drain,
        "batches_built_during_load": phase.batches_built_during_load,
        "errors": dict(phase.errors),
    }


def report_b(phase: PhaseB, watcher: ActionWatcher) -> dict[str, Any]:
    published = watcher.probe_published
    from_accepted = [
        (published[i] - at) * 1000 for i, at in phase.probes_accepted.items() if i in published
    ]
    from_sent = [
        (published[i] - phase.probes_sent[i]) * 1000
        for i in phase.probes_accepted
        if i in published
    ]
    return {
        "offered_rate": round(phase.offered / phase.load_seconds, 1)
        if phase.load_seconds
        else None,
        "achieved_rate": _rate(phase.accepted, phase.load_seconds),
        "offered": phase.offered,
        "accepted": phase.accepted,
        "load_seconds": round(phase.load_seconds, 2),
        "probes_accepted": len(phase.probes_accepted),
        "samples": len(from_accepted),
        "probes_without_action_request": len(phase.probes_accepted) - len(from_accepted),
        # From the 202 of the POST to the action request on the bus.
        "latency_ms": harness.percentiles(from_accepted, PERCENTILES),
        # From sending the POST (adds ingest: validation, JetStream publish and ack).
        "latency_from_post_sent_ms": harness.percentiles(from_sent, PERCENTILES),
        "post_ms": harness.percentiles(phase.post_ms, PERCENTILES),
        "max_store_lag": phase.max_lag,
        "action_requests": phase.requests,
        "firings": phase.firings,
        "cpu_percent": phase.cpu_percent,
        "errors": dict(phase.errors),
    }


# --- the run ------------------------------------------------------------------------------


@dataclass
class Deployment:
    """The processes under test: `tripwire up` alone, or (`--split`) `serve api`,
    `serve worker --no-actions`, `serve actions` and `serve sla` beside one nats-server,
    sharing one SQLite file."""

    api_url: str
    nats_url: str
    started: dict[str, tuple[subprocess.Popen[bytes], Path]] = field(default_factory=dict)
    nats: EmbeddedNats | None = None

    @property
    def front(self) -> tuple[subprocess.Popen[bytes], Path]:
        """The process that serves the API."""
        return self.started["api"] if "api" in self.started else self.started["engine"]

    def processes(self) -> harness.Processes:
        front, _ = self.front
        processes = harness.Processes(front.pid)
        if self.nats is not None:
            processes.pids = {name: process.pid for name, (process, _) in self.started.items()}
            pid = harness.nats_pid(self.nats.store_dir)
            if pid is not None:
                processes.pids["nats"] = pid
        return processes

    def stop(self) -> None:
        for process, home in reversed(self.started.values()):
            harness.stop_engine(process, home)
        if self.nats is not None:
            self.nats.stop()


def deploy_up(home: Path, port: int, definitions: Path, processes: int | None = None) -> Deployment:
    """`tripwire up --automations` on embedded NATS and SQLite, in its default topology
    or `processes` processes."""
    nats_port = free_port()
    env = {"TRIPWIRE_PROCESSES": str(processes)} if processes else None
    engine = harness.start_engine(port, home, nats_port=nats_port, automations=definitions, env=env)
    log(f"engine pid {engine.pid}, home {home}")
    deployment = Deployment(f"http://127.0.0.1:{port}", f"nats://127.0.0.1:{nats_port}")
    deployment.started["engine"] = (engine, home)
    return deployment


async def deploy_split(home: Path, port: int, definitions: Path) -> Deployment:
    """nats-server, then `serve api`, the automations applied through it, then `serve
    worker --no-actions`, `serve actions` and `serve sla` (the timers of the proactive
    triggers)."""
    nats = EmbeddedNats(home / "nats")
    await nats.astart()
    deployment = Deployment(f"http://127.0.0.1:{port}", nats.url, nats=nats)
    env = {
        "TRIPWIRE_NATS_URL": nats.url,
        "TRIPWIRE_DATABASE_URL": f"sqlite:///{home / 'tripwire.db'}",
        "TRIPWIRE_LOG_LEVEL": "WARNING",
    }
    try:
        api_home = home / "api"
        deployment.started["api"] = (harness.serve("api", port, api_home, env), api_home)
        async with httpx.AsyncClient(base_url=deployment.api_url) as client:
            await harness.wait_healthy(
                client, deployment.started["api"][0], api_home, HEALTH_TIMEOUT
            )
        await asyncio.to_thread(harness.apply_automations, deployment.api_url, definitions, home)
        roles = {"worker": ["--no-actions"], "actions": [], "sla": []}
        for role, options in roles.items():
            role_home = home / role
            process = harness.serve(role, free_port(), role_home, env, *options)
            deployment.started[role] = (process, role_home)
        pids = ", ".join(f"{n} {p.pid}" for n, (p, _) in deployment.started.items())
        log(f"api, worker, actions and sla apart ({pids}); NATS {nats.url}, home {home}")
    except BaseException:
        await asyncio.to_thread(deployment.stop)
        raise
    return deployment


async def measure(
    deployment: Deployment,
    workload: Workload,
    pool: list[bytes],
    seconds: float,
    rates: Sequence[float],
    batch: int,
) -> tuple[PhaseA, list[PhaseB], ActionWatcher, dict[str, float | None]]:
    watcher = ActionWatcher()
    api_url, (front, front_home) = deployment.api_url, deployment.front
    async with (
        harness.load_client(api_url, connections=64) as api,
        httpx.AsyncClient(base_url=api_url, timeout=harness.REQUEST_TIMEOUT) as poller,
    ):
        started = time.monotonic()
        await harness.wait_healthy(poller, front, front_home, HEALTH_TIMEOUT, store_consumer=True)
        log(f"healthy in {time.monotonic() - started:.1f}s at {api_url}")
        await watcher.start(deployment.nats_url)
        processes = deployment.processes()
        try:
            log(f"A: POSTing batches of {batch} as fast as accepted for {seconds:g}s")
            phase_a = await throughput(
                api, poller, workload, pool, watcher, processes, seconds, batch
            )
            pool.clear()
            phases_b = []
            for rate in rates:
                log(f"B: {rate:g} events/s for {seconds:g}s, every {PROBE_EVERY}th a probe")
                phases_b.append(
                    await latency(api, poller, workload, watcher, processes, seconds, rate)
                )
        finally:
            await watcher.stop()
    return phase_a, phases_b, watcher, processes.rss_mb()


async def _deploy_and_measure(
    split: bool, processes: int | None, home: Path, port: int, definitions: Path, *args: Any
) -> tuple[PhaseA, list[PhaseB], ActionWatcher, dict[str, float | None]]:
    if split:
        deployment = await deploy_split(home, port, definitions)
    else:
        deployment = deploy_up(home, port, definitions, processes)
    try:
        return await measure(deployment, *args)
    finally:
        await asyncio.to_thread(deployment.stop)


def run(
    seconds: float = 30.0,
    rates: Sequence[float] = (1000.0, 5000.0),
    total: int = 1000,
    candidates: int = 100,
    batch: int = 500,
    port: int | None = None,
    split: bool = False,
    processes: int | None = None,
) -> dict[str, Any]:
    """Run both phases against a new engine and return the result object."""
    if seconds <= 0 or not rates or min(rates) <= 0 or batch < 1:
        raise ValueError("--seconds, --rate and --batch must be positive")
    if not 1 <= candidates <= total:
        raise ValueError("--candidates must be between 1 and --automations")
    if split and processes:
        raise ValueError("--split and --processes do not go together")
    benchmarked = revision()  # before the run: the checkout may change while it runs
    workload = Workload()
    batches = math.ceil(seconds * MAX_POOL_RATE / batch) + CONCURRENCY
    pool = harness.serialise_pool(workload.batch, batch, batches)
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-triggers-") as tmp:
        home = Path(tmp)
        definitions = write_automations(home / "automations", total, candidates)
        log(f"{total:,} automations ({candidates} candidates)")
        phase_a, phases_b, watcher, rss = asyncio.run(
            _deploy_and_measure(
                split, processes, home, port, definitions, workload, pool, seconds, rates, batch
            )
        )
    a = report_a(phase_a)
    bs = [report_b(phase, watcher) for phase in phases_b]
    drain = a["evaluated_and_stored_per_s"] or 0
    during = a["evaluated_and_stored_per_s_during_load"] or 0
    targets: dict[str, Any] = {
        "evaluated_and_stored_per_s": TARGET_EVALUATED_PER_S,
        "evaluated_and_stored_met": drain >= TARGET_EVALUATED_PER_S,
        "during_load_share_of_drain": TARGET_DURING_LOAD,
        "during_load_share": round(during / drain, 2) if drain else None,
        "during_load_met": bool(drain) and during >= TARGET_DURING_LOAD * drain,
    }
    for rate, b in zip(rates, bs, strict=True):
        if rate in TARGET_P99_MS:
            p99 = b["latency_ms"]["p99"]
            targets[f"p99_ms_at_{rate:g}"] = TARGET_P99_MS[rate]
            targets[f"p99_at_{rate:g}_met"] = p99 is not None and p99 <= TARGET_P99_MS[rate]
    if split:
        layout = "api, worker, actions and sla apart"
    else:
        layout = f"tripwire up, --processes {processes}" if processes else "tripwire up"
    return {
        "benchmark": "triggers",
        "machine": harness.machine(with_cpu_model=True),
        "revision": benchmarked,
        "parameters": {
            "processes": layout,
            "seconds": seconds,
            "rates": list(rates),
            "automations": total,
            "candidates": candidates,
            "batch": batch,
            "phase_a_concurrency": CONCURRENCY,
            "phase_b_post_every_ms": PACE * 1000,
            "phase_b_probe_every": PROBE_EVERY,
            "event_templates": len(workload.templates),
        },
        "phase_a": a,
        "phase_b": bs,
        "firings": {
            "total": len(watcher.firings),
            "action_requests": watcher.requests,
            "probe": watcher.by_automation[PROBE_AUTOMATION],
            "automations_that_fired": len(watcher.by_automation),
            "action_requests_by_kind": dict(sorted(by_kind(watcher.by_automation).items())),
        },
        "targets": targets,
        "peak_rss_mb": rss,
    }


def _rates(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of rates: {text!r}") from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m bench.triggers`."""
    parser = harness.argument_parser("bench.triggers", __doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="each phase (default 30)")
    parser.add_argument(
        "--rate",
        type=_rates,
        default=[1000.0, 5000.0],
        help="phase B events/s, comma-separated for one phase B each (default 1000,5000)",
    )
    parser.add_argument(
        "--automations", type=int, default=1000, help="automations in all (default 1000)"
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=100,
        help="automations that expect the events sent (default 100)",
    )
    parser.add_argument("--batch", type=int, default=500, help="phase A events per POST (500)")
    parser.add_argument("--port", type=int, default=None, help="engine API port (default free)")
    parser.add_argument(
        "--split",
        action="store_true",
        help="run serve api, serve worker --no-actions, serve actions and serve sla apart",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="tripwire up --processes N (default: up's own choice, a process per core)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; 0 when every accepted event was stored and evaluated."""
    args = parse_args(argv)
    result = harness.run_printed(
        lambda: run(
            args.seconds,
            args.rate,
            args.automations,
            args.candidates,
            args.batch,
            args.port,
            args.split,
            args.processes,
        )
    )
    if isinstance(result, int):
        return result
    a = result["phase_a"]
    complete = a["drain_seconds"] is not None and a["sent_events_stored"] >= a["accepted"]
    return 0 if complete and all(b["samples"] for b in result["phase_b"]) else 1


if __name__ == "__main__":
    sys.exit(main())
