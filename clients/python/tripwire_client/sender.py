"""One batch of events to POST /api/events, with short timeouts and retries; never raises.

Standard library only (urllib), so the emitter installs into any environment, Airflow's
included, without touching its pins.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tripwire_client.config import retry_delay
from tripwire_client.event import Event
from tripwire_client.exchange import exchange
from tripwire_client.retry import Answer, Backoff, Retry

log = logging.getLogger("tripwire_client")

EVENT_REFUSALS = frozenset({413, 422})  # about the events sent, not the request (401, 404)

Wait = Callable[[float], bool]
"""Waits up to the given seconds; True means stop waiting for good (the emitter closes)."""


@dataclass(frozen=True)
class Outcome:
    """How sending one batch ended: delivered, or why not.

    `bad_event`: some event of the batch was refused (invalid, too large, not JSON); the
    others may pass without it.
    """

    delivered: bool
    problem: str = ""
    bad_event: bool = False


def encode(events: Sequence[Event]) -> bytes:
    """A JSON array; values JSON cannot hold (dates, paths, ...) are sent as their text."""
    return json.dumps(list(events), default=str, separators=(",", ":")).encode()


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
    request = urllib.request.Request(
        url + "/api/events",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    return exchange(request, timeout, read_answer=False, error_bytes=2000)


def send_batch(
    url: str,
    events: Sequence[Event],
    *,
    headers: Mapping[str, str],
    timeout: float,
    retries: int,
    wait: Wait,
    backoff: Backoff = retry_delay,
) -> Outcome:
    """POST `events` as one request, sent again while `Retry` says the answer may change."""
    try:
        body = encode(events)
    except (TypeError, ValueError) as exc:
        return Outcome(False, f"the events cannot be encoded as JSON: {exc}", bad_event=True)
    retry = Retry(retries, backoff)
    while True:
        answer = _post(url, body, headers, timeout)
        delay = retry.delay_after(answer)
        if delay is None or wait(delay):
            break
    if answer.status == 202:
        return Outcome(True)
    if not answer.retryable:
        problem = f"tripwire refused them ({answer.status}): {answer.text}"
        return Outcome(False, problem, bad_event=answer.status in EVENT_REFUSALS)
    return Outcome(False, f"tripwire at {url} did not accept them ({answer.reason})")
