"""Run by tests/events/test_prefect_client.py with the Prefect venv's Python.

Sends events through `PrefectEventsClient` (the websocket client Prefect's workers use)
and prints `{"ids": [...]}`; the client raises, and this exits non-zero, when the
connection or authentication fails.

argv[1]: a JSON list of events (Prefect's Event fields).
PREFECT_API_URL (and PREFECT_API_AUTH_STRING) come from the environment.
"""

from __future__ import annotations

import asyncio
import json
import sys

from prefect.events import Event
from prefect.events.clients import PrefectEventsClient


async def main() -> None:
    events = [Event.model_validate(item) for item in json.loads(sys.argv[1])]
    # No reconnection attempts: a refused connection fails at once instead of retrying.
    async with PrefectEventsClient(reconnection_attempts=0) as client:
        for event in events:
            await client.emit(event)
    print(json.dumps({"ids": [str(e.id) for e in events]}))


if __name__ == "__main__":
    asyncio.run(main())
