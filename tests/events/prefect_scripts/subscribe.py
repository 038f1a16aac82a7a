"""Run by tests/events/test_prefect_client.py with the Prefect venv's Python.

Reads events back with `PrefectEventSubscriber`: prints `subscribed` once connected, then
`{"ids": [...]}` after `count` events; exits non-zero after `timeout` seconds, or when
the server closes the stream first.

argv: count, timeout, then a JSON filter (Prefect's EventFilter fields). The subscriber
sends Prefect's whole filter, every unset field included, as Prefect's workers do.
"""

from __future__ import annotations

import asyncio
import json
import sys

from prefect.events.clients import PrefectEventSubscriber
from prefect.events.filters import EventFilter


async def main(count: int, timeout: float, flt: EventFilter) -> int:
    ids: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            async with PrefectEventSubscriber(filter=flt, reconnection_attempts=0) as subscriber:
                print("subscribed", flush=True)
                async for event in subscriber:
                    ids.append(str(event.id))
                    if len(ids) == count:
                        break
    except TimeoutError:
        print(f"received {len(ids)} of {count} events in {timeout}s: {ids}", file=sys.stderr)
        return 1
    print(json.dumps({"ids": ids}), flush=True)
    return 0 if len(ids) == count else 1


if __name__ == "__main__":
    flt = EventFilter.model_validate(json.loads(sys.argv[3]))
    sys.exit(asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), flt)))
