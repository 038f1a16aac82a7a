"""What the benchmarks share: a throwaway `tripwire up`, /proc sampling, POST loops, results."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from actions.outbound import action_client

# nats-py's drain of the store's pull subscription can run into its 30 s drain_timeout.
APPLY_TIMEOUT = 120.0  # `tripwire apply` of a benchmark's automations
STOP_TIMEOUT = 40.0
REQUEST_TIMEOUT = 60.0
JSON_HEADERS = {"content-type": "application/json"}


def load_client(base_url: str, connections: int) -> httpx.AsyncClient:
    """The client a benchmark loads the engine with: httpx's API on aiohttp's pool, as
    the actions use. httpx's own pool (httpcore) scans every queued request against every
    connection on each assignment: once POSTs queued at 1,000 events/s, the load
    generator itself took most of a core and offered the engine a fraction of the rate."""
    client = action_client(connections=connections, timeout=REQUEST_TIMEOUT, allow_private=True)
    client.base_url = httpx.URL(base_url)
    return client


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def argument_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The command line of `python -m <module>`, its docstring as the description."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def run_or_log_error(benchmark: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """The benchmark's result object; None, logged, on a bad parameter or an engine failure."""
    try:
        return benchmark()
    except (RuntimeError, ValueError) as exc:
        log(f"error: {exc}")
        return None


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through the benchmark's `finally`, which stops the engine


def run_printed(benchmark: Callable[[], dict[str, Any]]) -> dict[str, Any] | int:
    """Run a benchmark (SIGTERM stops it cleanly), print its result object as JSON on stdout
    and return it; or the exit code when there is none: 130 interrupted, 2 a bad parameter
    or an engine failure."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = run_or_log_error(benchmark)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result is None:
        return 2
    print(orjson.dumps(result).decode(), flush=True)
    return result


# --- the engine ---------------------------------------------------------------------------


def start_engine(
    port: int,
    home: Path,
    nats_port: int | None = None,
    automations: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`tripwire up` in its own session, output to home/engine.log, other TRIPWIRE_* variables
    of this environment ignored; NATS on `nats_port`, `--automations` and the TRIPWIRE_*
    variables of `env` when given."""
    settings = {"TRIPWIRE_LOG_LEVEL": "WARNING"}
    if nats_port is not None:
        settings["TRIPWIRE_NATS_PORT"] = str(nats_port)
    for name, value in (env or {}).items():
        if not name.startswith("TRIPWIRE_"):
            raise ValueError(f"start_engine: {name} is not a TRIPWIRE_* variable")
        settings[name] = value
    arguments = ["up", "--port", str(port), "--home", str(home)]
    if automations is not None:
        arguments += ["--automations", str(automations)]
    return spawn_tripwire(arguments, home, settings)


def spawn_tripwire(
    arguments: list[str], home: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """`tripwire ARGUMENTS` in its own session (so that stopping it stops what it started),
    output to home/engine.log, with the TRIPWIRE_* variables of `env` and none of this
    environment's."""
    settings = {k: v for k, v in os.environ.items() if not k.startswith("TRIPWIRE_")} | env
    with (home / "engine.log").open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "tripwire.cli", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=settings,
            start_new_session=True,
        )


def serve(
    role: str, port: int, home: Path, env: dict[str, str], *options: str
) -> subprocess.Popen[bytes]:
    """`tripwire serve ROLE [OPTIONS]` with the TRIPWIRE_* variables of `env` only; output
    to home/engine.log (where harness.wait_healthy and stop_engine look)."""
    home.mkdir(parents=True, exist_ok=True)
    arguments = ["serve", role, *options, "--port", str(port)]
    return spawn_tripwire(arguments, home, env | {"TRIPWIRE_HOME": str(home)})


def apply_automations(api_url: str, definitions: Path, home: Path) -> None:
    """`tripwire apply -f FILE` against the API."""
    settings = {k: v for k, v in os.environ.items() if not k.startswith("TRIPWIRE_")}
    command = [sys.executable, "-m", "tripwire.cli", "apply", "-f", str(definitions)]
    command += ["--api", api_url]
    with (home / "apply.log").open("wb") as output:
        done = subprocess.run(
            command, stdout=output, stderr=subprocess.STDOUT, env=settings, timeout=APPLY_TIMEOUT
        )
    if done.returncode != 0:
        tail = (home / "apply.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"tripwire apply failed with code {done.returncode}:\n{tail}")


def nats_pid(store_dir: Path) -> int | None:
    """The pid of the nats-server whose store is `store_dir` (from its pid file)."""
    with contextlib.suppress(OSError, ValueError):
        return int((store_dir / "nats-server.pid").read_text().strip())
    return None


def stop_engine(process: subprocess.Popen[bytes], home: Path) -> None:
    """SIGINT and wait; then SIGKILL its process group (it and its nats-server)."""
    if process.poll() is None:
        log(f"stopping the engine (pid {process.pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(
                f"the engine did not stop within {STOP_TIMEOUT:.0f}s; killing it. Its log ends:\n"
                f"{engine_log_tail(home)}"
            )
    # The group is the engine's own session (start_new_session): only what it started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def engine_log_tail(home: Path, lines: int = 20) -> str:
    """The last lines the engine printed."""
    path = home / "engine.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def wait_healthy(
    client: httpx.AsyncClient,
    engine: subprocess.Popen[bytes],
    home: Path,
    timeout: float,
    store_consumer: bool = False,
) -> None:
    """Until GET /api/health answers 200 (and, with `store_consumer`, reports the store
    consumer's lag); raises when the engine exits or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.poll() is not None:
            raise RuntimeError(
                f"the engine exited with code {engine.returncode}:\n{engine_log_tail(home)}"
            )
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            response = await client.get("/api/health", timeout=2.0)
            if response.status_code == 200 and (
                not store_consumer or response.json()["store_consumer"]["lag"] is not None
            ):
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(
        f"the engine was not healthy within {timeout:.0f}s:\n{engine_log_tail(home)}"
    )


# --- CPU and memory from /proc ------------------------------------------------------------


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a live process, in MiB."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else round(kb / 1024, 1)


def children(pid: int) -> list[int]:
    """Direct children of a process."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def process_name(pid: int) -> str:
    """What `ps -o comm` shows: nats-server, or tw-<name> for a process of `tripwire up`."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


class Processes:
    """CPU time of the engine, the processes `tripwire up` started for its roles (named
    as `up` names them: worker, api, ...) and its nats-server, between two marks."""

    def __init__(self, engine: int) -> None:
        self.pids = {"engine": engine}
        for pid in children(engine):
            name = process_name(pid)
            if name == "nats-server":
                self.pids.setdefault("nats", pid)
            elif name.startswith("tw-"):
                self.pids[name.removeprefix("tw-")] = pid
        self._before: dict[str, float | None] = {}
        self._started = 0.0

    def mark(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._started = time.monotonic()

    def seconds(self) -> dict[str, float | None]:
        """CPU seconds each process used since the mark."""
        found: dict[str, float | None] = {}
        for name, pid in self.pids.items():
            before, after = self._before.get(name), cpu_seconds(pid)
            found[name] = None if before is None or after is None else after - before
        return found

    def percent(self) -> dict[str, float | None]:
        elapsed = time.monotonic() - self._started
        return {
            name: None if used is None else round(100 * used / elapsed, 1)
            for name, used in self.seconds().items()
        }

    def cores(self) -> dict[str, list[int] | None]:
        """The cores each process may run on (its CPU affinity)."""
        found: dict[str, list[int] | None] = {}
        for name, pid in self.pids.items():
            try:
                found[name] = sorted(os.sched_getaffinity(pid))
            except OSError:  # exited
                found[name] = None
        return found

    def rss_mb(self) -> dict[str, float | None]:
        return {name: peak_rss_mb(pid) for name, pid in self.pids.items()}


# --- loading and polling the API ----------------------------------------------------------


async def stored_total(client: httpx.AsyncClient, only_sent: bool = False) -> int:
    """Stored events; with `only_sent` without the engine's own `tripwire.*` events."""
    flt: dict[str, Any] = {"event": {"exclude_prefix": ["tripwire."]}} if only_sent else {}
    response = await client.post("/api/events/filter", json={"filter": flt, "limit": 1})
    response.raise_for_status()
    return int(response.json()["total"])


@contextlib.asynccontextmanager
async def every(seconds: float, action: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Runs `action` every `seconds` while the block runs, and once more as it ends."""
    stop = asyncio.Event()

    async def repeat() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            await action()

    task = asyncio.create_task(repeat())
    try:
        yield
    finally:
        stop.set()
        await task


async def wait_counted(
    count: Callable[[], Awaitable[int]],
    expected: int,
    started: float,
    what: str,
    *,
    timeout: float,
    stall: float,
) -> int:
    """Poll `count` until it reaches `expected`, stops moving for `stall` seconds, or
    `timeout` seconds passed since `started` (monotonic); the count last seen. Progress
    goes to stderr every 5 s."""
    last, moved, logged = -1, time.monotonic(), time.monotonic()
    while True:
        counted = await count()
        now = time.monotonic()
        if counted >= expected:
            return counted
        if counted != last:
            last, moved = counted, now
        if now - started > timeout or now - moved > stall:
            log(f"{what}: {last:,} of {expected:,}; giving up waiting")
            return last
        if now - logged >= 5.0:
            logged = now
            log(f"{what} t={now - started:6.1f}s {counted:>9,} of {expected:,}")
        await asyncio.sleep(0.5)


def serialise_pool(make_batch: Callable[[int], bytes], batch: int, batches: int) -> list[bytes]:
    """`batches` batches built before the load, so that building them costs it nothing."""
    log(f"serialising {batches:,} batches of {batch} events ({batches * batch:,} events)")
    pool = [make_batch(batch) for _ in range(batches)]
    log(
        f"pool ready: {sum(len(b) for b in pool) / 2**20:,.0f} MiB, "
        f"{len(pool[0]) / batch:,.0f} bytes per event"
    )
    return pool


@dataclass
class BatchLoad:
    """What a load of POSTed batches measured; `post_batches` counts into it."""

    accepted: int = 0
    load_seconds: float = 0.0
    stored_at_load_end: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    post_ms: list[float] = field(default_factory=list)
    batches_built_during_load: int = 0


async def post_batches(
    client: httpx.AsyncClient,
    tally: BatchLoad,
    pool: list[bytes],
    make_batch: Callable[[int], bytes],
    batch: int,
    concurrency: int,
    deadline: float,
    rate: float | None = None,
    prepare: Callable[[bytes], bytes] | None = None,
) -> None:
    """`concurrency` workers POST batches until the deadline; in-flight requests finish.
    The pool is used first, then batches are built as they are sent; `prepare` (timed as
    part of the POST) is applied to each as it is sent.

    With `rate`, batches are paced to offer that many events per second (an open load),
    so the store's sustained rate can be measured at a given ingest rate."""
    index = 0
    issued = 0
    started = time.monotonic()

    async def worker() -> None:
        nonlocal index, issued
        while time.monotonic() < deadline:
            if rate:
                due = started + issued * batch / rate
                issued += 1
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
            if index < len(pool):
                body = pool[index]
                pool[index] = b""  # sent once: let it go
                index += 1
            else:
                body = make_batch(batch)
                tally.batches_built_during_load += 1
            sent = time.perf_counter()
            content = body if prepare is None else prepare(body)
            try:
                response = await client.post("/api/events", content=content, headers=JSON_HEADERS)
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.1)
                continue
            tally.post_ms.append((time.perf_counter() - sent) * 1000)
            if response.status_code == 202:
                tally.accepted += batch
            else:
                tally.errors[f"http_{response.status_code}"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# --- results ------------------------------------------------------------------------------


def percentiles(
    values: Sequence[float], ranks: Sequence[int], sort: bool = True
) -> dict[str, float | None]:
    """Nearest-rank percentiles (`ranks`, e.g. p50, p90, p99) and max, one decimal;
    `sort=False` for values sorted already."""
    ordered = sorted(values) if sort else values
    if not ordered:
        return {**{f"p{p}": None for p in ranks}, "max": None}

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)

    return {**{f"p{p}": rank(p) for p in ranks}, "max": round(ordered[-1], 1)}


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return None


def machine(with_cpu_model: bool = False) -> dict[str, Any]:
    """CPUs, Python and platform (and the CPU model) for the result object."""
    found: dict[str, Any] = {"cpus": os.cpu_count()}
    if with_cpu_model:
        found["cpu_model"] = cpu_model()
    return {**found, "python": platform.python_version(), "platform": platform.platform()}
