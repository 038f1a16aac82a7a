"""Run by bench/compare_prefect.py with the Prefect venv's Python: one websocket client.

Builds `count` events, one resource each of `resources` (`bench.resource.<n % resources>`),
connects Prefect's own `PrefectEventsClient`, prints `ready`, then obeys lines on stdin:

- `probe`: emits one `bench.probe` event about `bench.probe` and prints `sent`;
- `go`: emits the events, each stamped `occurred` just before its emit (building them
  beforehand keeps pydantic out of the send loop, and the stamp out of the latency), and
  prints `{"events": count, "first": ..., "last": ..., "seconds": ..., "cpu_seconds": ...}`:
  wall-clock times of the first and the last emit, the time between and the CPU time the
  sending took; then it closes the client and exits.

argv[1]: events to send; argv[2]: resources; argv[3]: checkpoint_every (Prefect's default
is 700). PREFECT_API_URL comes from the environment.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime

from prefect.events import Event
from prefect.events.clients import PrefectEventsClient

EVENT = "bench.compare.happened"
PROBE = "bench.probe"


def events(count: int, resources: int) -> list[Event]:
    """`count` events, spread over `resources` resources in turn."""
    return [
        Event(
            event=EVENT,
            resource={"prefect.resource.id": f"bench.resource.{n % resources}"},
            payload={"n": n},
        )
        for n in range(count)
    ]


async def main() -> None:
    count, resources, checkpoint_every = (int(a) for a in sys.argv[1:4])
    batch = events(count, resources)
    loop = asyncio.get_running_loop()
    # Prefect's own reconnection: a server that closes the socket (tripwire's 1013 when
    # its event bus is slow to acknowledge) gets the unconfirmed events again.
    async with PrefectEventsClient(checkpoint_every=checkpoint_every) as client:
        print("ready", flush=True)
        while True:
            command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if command == "probe":
                probe = Event(event=PROBE, resource={"prefect.resource.id": PROBE})
                await client.emit(probe)
                print("sent", flush=True)
            elif command == "go":
                break
            else:
                raise SystemExit(f"unknown command {command!r}")
        first = time.time()
        started, cpu = time.perf_counter(), time.process_time()
        for event in batch:
            event.occurred = datetime.now(UTC)
            await client.emit(event)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        last = time.time()
    sent = {"events": count, "first": first, "last": last, "seconds": seconds, "cpu_seconds": cpu}
    print(json.dumps(sent), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
