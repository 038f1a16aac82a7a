"""Run by tests/events/test_websocket_checkpoints.py with the Prefect venv's Python.

Sends `count` events through `PrefectEventsClient` with `checkpoint_every`, so that the
client's last checkpoint ping covers all of them, and prints `{"ids": [...]}` of those it
counts as delivered. With `extra` > 0 it then sends that many more (fewer than a
checkpoint's worth, so none is confirmed), prints their ids as `{"unconfirmed": [...]}`
and leaves without closing the socket, as a crashed process would.

argv: count, checkpoint_every, extra. PREFECT_API_URL comes from the environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

from prefect.events import Event
from prefect.events.clients import PrefectEventsClient


def make(n: int) -> Event:
    return Event(
        event=f"checkpoint.sent.{n}",
        resource={"prefect.resource.id": f"prefect.flow-run.{uuid.uuid4()}"},
        related=[{"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": "flow"}],
        payload={"n": n},
    )


async def main() -> None:
    count, checkpoint_every, extra = (int(a) for a in sys.argv[1:4])
    events = [make(n) for n in range(count + extra)]
    client = PrefectEventsClient(reconnection_attempts=0, checkpoint_every=checkpoint_every)
    await client.__aenter__()
    for event in events[:count]:
        await client.emit(event)
    print(json.dumps({"ids": [str(e.id) for e in events[:count]]}), flush=True)
    if not extra:
        await client.__aexit__(None, None, None)
        return
    for event in events[count:]:
        await client.emit(event)
    print(json.dumps({"unconfirmed": [str(e.id) for e in events[count:]]}), flush=True)
    os._exit(0)  # no close frame, no goodbye


if __name__ == "__main__":
    asyncio.run(main())
