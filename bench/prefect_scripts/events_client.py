"""Run by bench/prefect_ingest.py with the Prefect venv's Python: one websocket client.

Builds `count` events, connects Prefect's own `PrefectEventsClient`, prints `ready`, waits
for a line on stdin, emits them all and prints `{"events": count, "seconds": ...,
"cpu_seconds": ...}` (its own CPU time while emitting). With a
count that is a multiple of `checkpoint_every`, the last emit returns only once the
server answered the client's checkpoint ping: every event is delivered by the client's own
definition.

argv[1]: events to send; argv[2]: checkpoint_every (Prefect's default is 700).
PREFECT_API_URL comes from the environment.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

from prefect.events import Event
from prefect.events.clients import PrefectEventsClient

STATES = ("Scheduled", "Pending", "Running", "Completed", "Failed", "Crashed")


def events(count: int) -> list[Event]:
    """Flow-run state events as Prefect's engine emits them: a resource, related flow,
    deployment and tag, a small payload."""
    flow = str(uuid.uuid4())
    deployment = str(uuid.uuid4())
    runs = [str(uuid.uuid4()) for _ in range(100)]
    made = []
    for n in range(count):
        state = STATES[n % len(STATES)]
        made.append(
            Event(
                event=f"prefect.flow-run.{state}",
                resource={
                    "prefect.resource.id": f"prefect.flow-run.{runs[n % len(runs)]}",
                    "prefect.resource.name": f"bench-run-{n % len(runs)}",
                    "prefect.state-name": state,
                    "prefect.state-type": state.upper(),
                },
                related=[
                    {
                        "prefect.resource.id": f"prefect.flow.{flow}",
                        "prefect.resource.role": "flow",
                        "prefect.resource.name": "etl",
                    },
                    {
                        "prefect.resource.id": f"prefect.deployment.{deployment}",
                        "prefect.resource.role": "deployment",
                        "prefect.resource.name": "etl-nightly",
                    },
                    {"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"},
                ],
                payload={"intended": {"from": "RUNNING", "to": state.upper()}, "n": n},
            )
        )
    return made


async def main() -> None:
    count, checkpoint_every = int(sys.argv[1]), int(sys.argv[2])
    batch = events(count)
    loop = asyncio.get_running_loop()
    async with PrefectEventsClient(
        reconnection_attempts=0, checkpoint_every=checkpoint_every
    ) as client:
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        started, cpu = time.perf_counter(), time.process_time()
        for event in batch:
            await client.emit(event)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"events": count, "seconds": seconds, "cpu_seconds": cpu}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
