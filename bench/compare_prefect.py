"""Side by side: tripwire and a Prefect server fire the same automations on the same events.

    python -m bench.compare_prefect [--sizes 100x2000,1000x10000] [--rounds 3]
                                    [--timeout 1800] [--stall 180] [--systems tripwire,prefect]
    make bench-compare-prefect ARGS="--sizes 100x2000 --rounds 1"

For each size NxM and each round it starts, on free ports and in fresh temporary homes,
`tripwire up` and a Prefect 3.8 server (`prefect server start` from .venv-prefect, services
on, SQLite), and creates in both, with the same bodies in Prefect's format, N
one-resource reactive automations: automation i expects `bench.compare.happened` about
`bench.resource.<i>`, threshold 1, within 0, action `do-nothing`. Prefect takes them one
by one (`POST /api/automations/`), tripwire in one `POST /api/automations/apply`. A probe
automation, created last, tells when each system has loaded them.

Then, one system at a time, Prefect's own `PrefectEventsClient` (bench/prefect_scripts/
compare_client.py, run by the Prefect venv's Python) sends M events over the websocket,
event n about `bench.resource.<n % N>`, each stamped `occurred` as it is emitted. Each
event fires exactly one automation, so each system owes M firings.

A firing is the system's own record of it, read back through its events API
(`POST /api/events/filter`, the same on both):

- Prefect: `prefect.automation.triggered`, whose `occurred` is when its trigger service
  decided to fire;
- tripwire: `tripwire.automation.triggered`, whose `received` is when the worker decided
  to fire (its `occurred` is the triggering event's, as Prefect's window rules use).

Both carry the triggering event in their payload. Latency is the firing's time minus the
triggering event's `occurred` (one machine, one clock); throughput is the firings over the
time from the first emit to the last firing. The same is measured to the end of the
action (`prefect.automation.action.executed`, `tripwire.action.executed`). Each system is
waited for until it owes nothing, `--timeout` passes, or its count stops moving for
`--stall` seconds; what is missing then is reported, not waited for.

Progress goes to stderr; one JSON object goes to stdout: per size, each system's medians
over the rounds, the ratios and the targets (throughput at least 50x Prefect's, p99 at
most 1/100 of Prefect's), then every round's figures, CPU and what else the machine ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import harness, prefect_ingest, triggers
from bench.harness import log
from events.embedded import free_port

CLIENT = Path(__file__).resolve().parent / "prefect_scripts" / "compare_client.py"
EVENT = "bench.compare.happened"  # as compare_client.py sends them
RESOURCE_PREFIX = "bench.resource."
PROBE_EVENT = PROBE_RESOURCE = "bench.probe"
PROBE_AUTOMATION = "bench-compare-probe"
SYSTEMS = ("tripwire", "prefect")
# Each system's names for the two records of a firing.
TRIGGERED = {"tripwire": "tripwire.automation.triggered", "prefect": "prefect.automation.triggered"}
EXECUTED = {
    "tripwire": "tripwire.action.executed",
    "prefect": "prefect.automation.action.executed",
}
DEFAULT_SIZES = ((100, 2_000), (1_000, 10_000))
CHECKPOINT_EVERY = 700  # Prefect's client default
PAGE = 50  # the most Prefect's events API returns at once
START_TIMEOUT = 120.0
READY_TIMEOUT = 120.0  # automations created to the probe's firing
PROBE_WAIT = 8.0  # per probe event; Prefect's event persister flushes every 5 s
SEND_TIMEOUT = 600.0
POLL_EVERY = 1.0
LOG_EVERY = 10.0
PERCENTILES = (50, 99)
TARGET_THROUGHPUT_RATIO = 50.0
TARGET_P99_RATIO = 100.0


# --- the automations ----------------------------------------------------------------------


def automation(i: int) -> dict[str, Any]:
    """Automation i in Prefect's format: each `bench.compare.happened` about resource i."""
    return {
        "name": f"bench-compare-{i:04d}",
        "description": f"Each event about {RESOURCE_PREFIX}{i}",
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": f"{RESOURCE_PREFIX}{i}"},
            "expect": [EVENT],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [{"type": "do-nothing"}],
    }


def probe_automation() -> dict[str, Any]:
    """Fires on the probe event: created last, its firing says the others are loaded."""
    body = automation(0)
    body["name"] = PROBE_AUTOMATION
    body["description"] = "Tells the benchmark that the automations are loaded"
    body["trigger"]["match"] = {"prefect.resource.id": PROBE_RESOURCE}
    body["trigger"]["expect"] = [PROBE_EVENT]
    return body


async def create_automations(client: httpx.AsyncClient, api: str, system: str, count: int) -> float:
    """Create the automations, the probe last; seconds taken. tripwire takes them in one
    request, as `tripwire apply` sends them: one transaction and one reload, where a
    thousand single creations each make the worker reload. Prefect has no such call."""
    started = time.monotonic()
    bodies = [*(automation(i) for i in range(count)), probe_automation()]
    if system == "tripwire":
        response = await client.post(f"{api}/automations/apply", json={"automations": bodies})
        if response.status_code != 200:
            raise RuntimeError(f"applying at {api}: {response.status_code} {response.text[:500]}")
        return time.monotonic() - started
    for body in bodies:
        response = await client.post(f"{api}/automations/", json=body)
        if response.status_code != 201:
            raise RuntimeError(
                f"creating {body['name']} at {api}: {response.status_code} {response.text[:500]}"
            )
    return time.monotonic() - started


# --- reading firings back -----------------------------------------------------------------


def _filter(name: str, **parts: Any) -> dict[str, Any]:
    # No time range: the servers are fresh, and a count without one is the events' own.
    return {"event": {"name": [name]}, **parts}


async def count_events(client: httpx.AsyncClient, api: str, flt: dict[str, Any]) -> int:
    """How many stored events match the filter."""
    response = await client.post(f"{api}/events/filter", json={"filter": flt, "limit": 1})
    response.raise_for_status()
    return int(response.json()["total"])


async def read_events(
    client: httpx.AsyncClient, api: str, flt: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every stored event that matches the filter, page by page."""
    response = await client.post(f"{api}/events/filter", json={"filter": flt, "limit": PAGE})
    found: list[dict[str, Any]] = []
    while True:
        response.raise_for_status()
        page = response.json()
        found += page["events"]
        if not page.get("next_page") or not page["events"]:
            return found
        response = await client.get(page["next_page"])


async def bench_firings(client: httpx.AsyncClient, api: str, system: str) -> int:
    """Firings recorded so far, the probe's left out."""
    name = TRIGGERED[system]
    probe = {"labels": {"prefect.resource.name": PROBE_AUTOMATION}}
    every = await count_events(client, api, _filter(name))
    return every - await count_events(client, api, _filter(name, resource=probe))


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Tally:
    """What a system's records say: per sent event (by its `n`), when it occurred, when
    the system received it, fired and acted on it, in seconds since the epoch."""

    occurred: dict[int, float] = field(default_factory=dict)
    received: dict[int, float] = field(default_factory=dict)
    fired: dict[int, float] = field(default_factory=dict)
    acted: dict[int, float] = field(default_factory=dict)
    duplicate_firings: int = 0
    duplicate_actions: int = 0

    def latencies_ms(self, done: dict[int, float]) -> list[float]:
        """Time from each event to `done`, in milliseconds, sorted."""
        return sorted((at - self.occurred[n]) * 1000 for n, at in done.items())


def tally(system: str, triggered: list[dict[str, Any]], executed: list[dict[str, Any]]) -> Tally:
    """Firings and actions of the benchmark's events, each event counted once; a second
    record of the same event counts as a duplicate."""
    found = Tally()
    by_id: dict[str, int] = {}
    for record in triggered:
        event = (record.get("payload") or {}).get("triggering_event") or {}
        resource_id = (event.get("resource") or {}).get("prefect.resource.id", "")
        if event.get("event") != EVENT or not resource_id.startswith(RESOURCE_PREFIX):
            continue
        n = int(event["payload"]["n"])
        if n in found.fired:
            found.duplicate_firings += 1
            continue
        by_id[str(event["id"])] = n
        found.occurred[n] = _time(event["occurred"]).timestamp()
        found.received[n] = _time(event["received"]).timestamp()
        decided = record["received"] if system == "tripwire" else record["occurred"]
        found.fired[n] = _time(decided).timestamp()
    for record in executed:
        causes = [
            r["prefect.resource.id"].removeprefix("prefect.event.")
            for r in record.get("related", [])
            if r.get("prefect.resource.role") == "triggering-event"
        ]
        n_or_none = next((by_id[c] for c in causes if c in by_id), None)
        if n_or_none is None:
            continue  # the probe's, or of an event whose firing was not found
        if n_or_none in found.acted:
            found.duplicate_actions += 1
            continue
        found.acted[n_or_none] = _time(record["occurred"]).timestamp()
    return found


# --- CPU of the processes, and of everything else -----------------------------------------


def descendants(pid: int) -> list[int]:
    """A process and everything it started, as far as /proc tells."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue += harness.children(current)
    return found


def _cpu(pids: Sequence[int]) -> float:
    return sum(harness.cpu_seconds(p) or 0.0 for p in pids)


def machine_busy_seconds() -> float:
    """CPU-seconds every process on the machine has used since boot (/proc/stat)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    return 0.0


class CpuWindow:
    """CPU-% of named process trees between start and stop, and of the rest of the
    machine (other users, on a shared host), in % of one core."""

    def __init__(self, trees: dict[str, list[int]]) -> None:
        self.trees = trees
        self.started = time.monotonic()
        self.before = {name: _cpu(pids) for name, pids in trees.items()}
        self.own_before = time.process_time()
        self.busy_before = machine_busy_seconds()

    def stop(self, reported: dict[str, float]) -> dict[str, float]:
        """The figures; `reported` adds CPU-seconds that processes gone by now reported."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        used = {name: _cpu(pids) - self.before[name] for name, pids in self.trees.items()}
        used |= reported
        used["bench"] = time.process_time() - self.own_before
        others = machine_busy_seconds() - self.busy_before - sum(used.values())
        found = {name: round(100 * s / elapsed, 1) for name, s in used.items()}
        found["rest_of_machine"] = round(max(0.0, 100 * others / elapsed), 1)
        return found


# --- the servers --------------------------------------------------------------------------


@dataclass
class Servers:
    """tripwire and a Prefect server, running."""

    urls: dict[str, str]
    pids: dict[str, int]


@contextlib.contextmanager
def servers(home: Path) -> Iterator[Servers]:
    """`tripwire up` and `prefect server start`, fresh, both healthy; stopped by pid."""
    port, nats_port, prefect_port = free_port(), free_port(), free_port()
    (home / "tripwire").mkdir()
    (home / "prefect").mkdir()
    engine = harness.start_engine(port, home / "tripwire", nats_port=nats_port)
    prefect = prefect_ingest.start_prefect(prefect_port, home / "prefect")
    try:
        urls = {
            "tripwire": f"http://127.0.0.1:{port}/api",
            "prefect": f"http://127.0.0.1:{prefect_port}/api",
        }

        async def engine_healthy() -> None:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await harness.wait_healthy(client, engine, home / "tripwire", START_TIMEOUT)

        asyncio.run(engine_healthy())
        prefect_ingest.wait_prefect(prefect, urls["prefect"], home / "prefect")
        log(
            f"tripwire pid {engine.pid} on {port}; "
            f"Prefect server pid {prefect.pid} on {prefect_port}"
        )
        yield Servers(urls, {"tripwire": engine.pid, "prefect": prefect.pid})
    finally:
        harness.stop_engine(engine, home / "tripwire")
        log(f"stopping the Prefect server (pid {prefect.pid})")
        prefect_ingest.stop_prefect(prefect)


# --- one system, one round ----------------------------------------------------------------


class EventsClient:
    """compare_client.py under the Prefect venv's Python, connected to one system."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def connect(cls, api: str, home: Path, events: int, resources: int) -> EventsClient:
        process = await asyncio.create_subprocess_exec(
            str(prefect_ingest.PREFECT_PYTHON),
            str(CLIENT),
            str(events),
            str(resources),
            str(CHECKPOINT_EVERY),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=prefect_ingest.prefect_env(home, api),
            cwd=home,
        )
        client = cls(process)
        await client._expect(b"ready", prefect_ingest.READY_TIMEOUT)
        return client

    async def _expect(self, what: bytes, timeout: float) -> bytes:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            line = await self.process.stdout.readline()
        if not line.startswith(what):
            assert self.process.stderr is not None
            error = (await self.process.stderr.read()).decode(errors="replace")[-2000:]
            raise RuntimeError(f"the Prefect events client failed:\n{error}")
        return line

    async def _say(self, command: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + b"\n")
        await self.process.stdin.drain()

    async def probe(self) -> None:
        await self._say(b"probe")
        await self._expect(b"sent", 30.0)

    async def send(self) -> dict[str, Any]:
        """Emit every event; the client's own account (first and last emit, seconds)."""
        await self._say(b"go")
        sent: dict[str, Any] = orjson.loads(await self._expect(b"{", SEND_TIMEOUT))
        await self.process.wait()
        return sent

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def wait_loaded(
    client: httpx.AsyncClient, events: EventsClient, api: str, system: str
) -> float:
    """Probe until the probe automation fires; seconds taken."""
    started = time.monotonic()
    probe = {"labels": {"prefect.resource.name": PROBE_AUTOMATION}}
    flt = _filter(TRIGGERED[system], resource=probe)
    while time.monotonic() - started < READY_TIMEOUT:
        await events.probe()
        waited = time.monotonic()
        while time.monotonic() - waited < PROBE_WAIT:
            await asyncio.sleep(0.25)
            if await count_events(client, api, flt):
                return time.monotonic() - started
    raise RuntimeError(f"{system} did not fire the probe automation within {READY_TIMEOUT:g}s")


async def wait_for(
    what: str,
    count: Any,
    expected: int,
    timeout: float,
    stall: float,
) -> tuple[int, float]:
    """Poll `count()` until it reaches `expected`, `timeout` passes or it stops moving for
    `stall` seconds; the last count and the seconds waited."""
    started = moved = logged = time.monotonic()
    last = await count()
    while last < expected:
        now = time.monotonic()
        if now - started > timeout or now - moved > stall:
            log(f"{what}: {last:,} of {expected:,} after {now - started:.0f}s; giving up")
            break
        await asyncio.sleep(POLL_EVERY)
        try:
            current = await count()
        except httpx.HTTPError as exc:
            log(f"{what}: polling failed ({type(exc).__name__}); again")
            continue
        if current != last:
            last, moved = current, time.monotonic()
        if time.monotonic() - logged >= LOG_EVERY:
            logged = time.monotonic()
            log(f"{what}: {last:,} of {expected:,} after {logged - started:.0f}s")
    return last, time.monotonic() - started


def _rate(count: int, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds else None


async def measure(
    system: str,
    api: str,
    home: Path,
    trees: dict[str, list[int]],
    automations: int,
    events: int,
    timeout: float,
    stall: float,
) -> dict[str, Any]:
    """Create the automations, wait until they are loaded, send the events and count the
    firings; one round's figures for one system."""
    async with httpx.AsyncClient(timeout=harness.REQUEST_TIMEOUT) as client:
        create_seconds = await create_automations(client, api, system, automations)
        log(f"{system}: {automations:,} automations created in {create_seconds:.1f}s")
        sender = await EventsClient.connect(api, home, events, automations)
        try:
            loaded_seconds = await wait_loaded(client, sender, api, system)
            log(f"{system}: loaded; sending {events:,} events with Prefect's client")
            cpu = CpuWindow(trees)
            sent = await sender.send()
            log(f"{system}: sent in {sent['seconds']:.1f}s; counting firings")

            async def firings() -> int:
                return await bench_firings(client, api, system)

            counted, fire_wait = await wait_for(
                f"{system} firings", firings, events, timeout, stall
            )
            cpu_percent = cpu.stop({"client": float(sent["cpu_seconds"])})

            async def actions() -> int:
                return await count_events(client, api, _filter(EXECUTED[system]))

            # The probe's actions are counted too: every firing's, then.
            probe = {"labels": {"prefect.resource.name": PROBE_AUTOMATION}}
            probes = await count_events(client, api, _filter(TRIGGERED[system], resource=probe))
            await wait_for(f"{system} actions", actions, counted + probes, timeout, stall)
        finally:
            await sender.close()
        triggered = await read_events(client, api, _filter(TRIGGERED[system]))
        executed = await read_events(client, api, _filter(EXECUTED[system]))
    found = tally(system, triggered, executed)
    first = float(sent["first"])
    wall = max(found.fired.values()) - first if found.fired else None
    acted_wall = max(found.acted.values()) - first if found.acted else None
    result = {
        "firings": len(found.fired),
        "firings_missing": events - len(found.fired),
        "duplicate_firings": found.duplicate_firings,
        "wall_seconds": round(wall, 2) if wall else None,
        "firings_per_s": _rate(len(found.fired), wall),
        "latency_ms": harness.percentiles(found.latencies_ms(found.fired), PERCENTILES, False),
        # The part of the latency before the system stamped the event received.
        "received_latency_ms": harness.percentiles(
            found.latencies_ms(found.received), PERCENTILES, False
        ),
        "actions": len(found.acted),
        "actions_missing": events - len(found.acted),
        "duplicate_actions": found.duplicate_actions,
        "actions_per_s": _rate(len(found.acted), acted_wall),
        "action_latency_ms": harness.percentiles(
            found.latencies_ms(found.acted), PERCENTILES, False
        ),
        "client_events_per_s": round(events / sent["seconds"], 1),
        "cpu_percent": cpu_percent,
        "automations_created_s": round(create_seconds, 1),
        "loaded_after_s": round(loaded_seconds, 1),
        "waited_for_firings_s": round(fire_wait, 1),
    }
    log(
        f"{system}: {result['firings']:,} firings ({result['firings_missing']:,} missing) in "
        f"{result['wall_seconds']}s, {result['firings_per_s']}/s; latency {result['latency_ms']}"
    )
    return result


def one_round(
    automations: int,
    events: int,
    timeout: float,
    stall: float,
    systems: Sequence[str] = SYSTEMS,
) -> dict[str, Any]:
    """Fresh servers; tripwire measured, then Prefect (both run, whichever is measured, so
    the machine is the same)."""
    figures: dict[str, Any] = {"load_average_before": os.getloadavg()[0]}
    with (
        tempfile.TemporaryDirectory(prefix="tripwire-bench-") as tmp,
        servers(Path(tmp)) as running,
    ):
        trees = {name: descendants(pid) for name, pid in running.pids.items()}
        for system in systems:
            figures[system] = asyncio.run(
                measure(
                    system,
                    running.urls[system],
                    Path(tmp),
                    trees,
                    automations,
                    events,
                    timeout,
                    stall,
                )
            )
    return figures


# --- results ------------------------------------------------------------------------------


def _median(rounds: list[dict[str, Any]], system: str, *path: str) -> float | None:
    values = []
    for figures in rounds:
        if "error" in figures or system not in figures:
            continue
        value: Any = figures[system]
        for key in path:
            value = value[key] if value is not None else None
        if value is not None:
            values.append(value)
    return round(statistics.median(values), 1) if values else None


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return round(top / bottom, 1) if top and bottom else None


def summary(automations: int, events: int, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds, the ratios and the targets for one size."""
    medians: dict[str, dict[str, Any]] = {
        system: {
            "firings": _median(rounds, system, "firings"),
            "firings_missing": max(
                (r[system]["firings_missing"] for r in rounds if system in r), default=None
            ),
            "wall_seconds": _median(rounds, system, "wall_seconds"),
            "firings_per_s": _median(rounds, system, "firings_per_s"),
            "latency_ms": {
                f"p{p}": _median(rounds, system, "latency_ms", f"p{p}") for p in PERCENTILES
            },
            "action_latency_ms": {
                f"p{p}": _median(rounds, system, "action_latency_ms", f"p{p}") for p in PERCENTILES
            },
            "received_latency_ms": {
                f"p{p}": _median(rounds, system, "received_latency_ms", f"p{p}")
                for p in PERCENTILES
            },
            "client_events_per_s": _median(rounds, system, "client_events_per_s"),
        }
        for system in SYSTEMS
    }
    tripwire, prefect = medians["tripwire"], medians["prefect"]
    throughput = _ratio(tripwire["firings_per_s"], prefect["firings_per_s"])
    p99 = _ratio(prefect["latency_ms"]["p99"], tripwire["latency_ms"]["p99"])
    return {
        "automations": automations,
        "events": events,
        "rounds_failed": sum("error" in r for r in rounds),
        **medians,
        "ratios": {
            "firings_per_s": throughput,
            "latency_p50": _ratio(prefect["latency_ms"]["p50"], tripwire["latency_ms"]["p50"]),
            "latency_p99": p99,
        },
        "targets_met": {
            "firings_per_s_50x": throughput is not None and throughput >= TARGET_THROUGHPUT_RATIO,
            "latency_p99_100x": p99 is not None and p99 >= TARGET_P99_RATIO,
        },
        "rounds": rounds,
    }


def run(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    rounds: int = 3,
    timeout: float = 1800.0,
    stall: float = 180.0,
    systems: Sequence[str] = SYSTEMS,
) -> dict[str, Any]:
    """Run every size `rounds` times and return the result object."""
    if rounds < 1 or timeout <= 0 or stall <= 0:
        raise ValueError("--rounds, --timeout and --stall must be positive")
    if any(n < 1 or m < 1 for n, m in sizes):
        raise ValueError("--sizes: automations and events must be positive")
    if not prefect_ingest.PREFECT_PYTHON.exists():
        raise RuntimeError(
            f"no Prefect venv at {prefect_ingest.PREFECT_VENV}: "
            "run `make .venv-prefect/bin/prefect`"
        )
    results = []
    for automations, events in sizes:
        done = []
        for number in range(1, rounds + 1):
            log(f"N={automations:,} M={events:,}: round {number} of {rounds}")
            try:
                done.append(one_round(automations, events, timeout, stall, systems))
            except (RuntimeError, OSError, TimeoutError, httpx.HTTPError) as exc:
                # On a shared machine one round can fail (a server that does not start):
                # the others still count, and the failure is in the result.
                log(f"round {number} failed: {exc}")
                done.append({"error": str(exc)[-2000:]})
        results.append(summary(automations, events, done))
    return {
        "benchmark": "compare-prefect",
        "rounds": rounds,
        "systems": list(systems),
        "sizes": results,
        "targets": {
            "firings_per_s_ratio": TARGET_THROUGHPUT_RATIO,
            "latency_p99_ratio": TARGET_P99_RATIO,
        },
        "machine": harness.machine(with_cpu_model=True),
        "revision": triggers.revision(),
    }


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """`100x2000,1000x10000` as [(100, 2000), (1000, 10000)]."""
    sizes = []
    for part in text.split(","):
        automations, _, events = part.strip().lower().partition("x")
        try:
            sizes.append((int(automations), int(events)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not AUTOMATIONSxEVENTS") from None
    return sizes


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m bench.compare_prefect`."""
    parser = harness.argument_parser("bench.compare_prefect", __doc__)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="automations x events, comma-separated (default 100x2000,1000x10000)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size (default 3)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="most seconds to wait for one system's firings (default 1800)",
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=180.0,
        help="give up on a system whose firing count has not moved for this long (default 180)",
    )
    parser.add_argument(
        "--systems",
        type=parse_systems,
        default=list(SYSTEMS),
        help="which systems to measure, comma-separated (default tripwire,prefect); both "
        "servers run either way, so the machine is the same",
    )
    return parser.parse_args(argv)


def parse_systems(text: str) -> list[str]:
    """`tripwire` or `tripwire,prefect`, in the order measured."""
    systems = [part.strip() for part in text.split(",") if part.strip()]
    if not systems or any(s not in SYSTEMS for s in systems):
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(SYSTEMS)}")
    return systems


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; 0 when every round ran and both systems fired for every
    event."""
    args = parse_args(argv)
    result = harness.run_printed(
        lambda: run(args.sizes, args.rounds, args.timeout, args.stall, args.systems)
    )
    if isinstance(result, int):
        return result
    complete = all(
        s["rounds_failed"] == 0 and s[system]["firings_missing"] == 0
        for s in result["sizes"]
        for system in args.systems
    )
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
