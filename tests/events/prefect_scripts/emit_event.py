"""Run by tests/events/test_prefect_client.py with the Prefect venv's Python.

Emits events with `prefect.events.emit_event`, drains Prefect's events worker so they
are on the websocket before the interpreter exits, and prints `{"ids": [...]}`.

argv[1]: a JSON list of `emit_event` keyword arguments (event, resource, related, payload).
Exits non-zero when an event is not emitted or Prefect logs an error while sending.
"""

from __future__ import annotations

import json
import logging
import sys

from prefect.events import emit_event
from prefect.events.worker import EventsWorker


class Errors(logging.Handler):
    """Collects the errors Prefect logs; the events worker only logs failures."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record not in self.records:  # seen twice when prefect._internal propagates
            self.records.append(record)


def main() -> int:
    errors = Errors()
    # prefect._internal stops propagating once Prefect configures logging: watch both.
    for name in ("prefect", "prefect._internal"):
        logging.getLogger(name).addHandler(errors)
    ids = []
    for spec in json.loads(sys.argv[1]):
        event = emit_event(**spec)
        if event is None:
            print(f"emit_event returned None for {spec['event']!r}", file=sys.stderr)
            return 1
        ids.append(str(event.id))
    # emit_event only queues; a worker thread sends. Stop it once its queue is sent.
    drained = EventsWorker.drain_all(timeout=30, at_exit=False)
    assert isinstance(drained, tuple)  # outside an event loop it waits, returning (done, pending)
    _, pending = drained
    if pending:
        print("the events worker did not drain within 30s", file=sys.stderr)
        return 1
    if errors.records:
        messages = "; ".join(r.getMessage() for r in errors.records)
        print(f"prefect logged errors: {messages}", file=sys.stderr)
        return 1
    print(json.dumps({"ids": ids}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
