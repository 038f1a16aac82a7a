"""A background emitter: events go to a bounded queue and a daemon thread sends them in batches.

emit() never blocks on the network and never raises: when the queue is full the oldest
event is dropped (and counted), and a batch the engine did not accept after its retries is
logged and dropped. The code that emits (an Airflow scheduler, a task) is never slowed
down by tripwire being slow or away.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from tripwire_client.config import api_auth_headers, flush_timeout, resolve_api_url, retry_delay
from tripwire_client.event import Event, build_event
from tripwire_client.retry import Backoff
from tripwire_client.sender import send_batch

log = logging.getLogger("tripwire_client")


class Emitter:
    """Sends events to tripwire from a background thread.

    emitter = Emitter("http://tripwire:4280", api_key="...")   # or TRIPWIRE_URL / _API_KEY
    emitter.emit_event("etl.step.done", "etl.step.load", payload={"rows": 10})
    emitter.flush(timeout=2)   # optional: wait (bounded) until the queue is sent
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        api_key: str | None = None,
        auth_string: str | None = None,
        max_queue: int = 10_000,
        batch_size: int = 100,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: Backoff = retry_delay,
    ) -> None:
        self.api_url = resolve_api_url(api_url)
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.timeout = timeout
        self.retries = retries
        self._headers = api_auth_headers(api_key, auth_string)
        self._backoff = backoff
        self.dropped = 0  # events lost: queue overflow or a batch given up on
        self.delivered = 0
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._queue: deque[Event] = deque()
        self._lock = threading.Condition()
        self._in_flight = 0
        self._closing = False
        self._failing = False
        self._thread: threading.Thread | None = None

    def emit(self, event: Event) -> None:
        """Queue one event (a dict in tripwire's schema) for sending; never blocks or raises."""
        try:
            self._enqueue(event)
        except Exception:  # a bug here must not reach the caller's job
            log.exception("tripwire: could not queue an event")

    def emit_event(
        self,
        event: str,
        resource: Mapping[str, str] | str,
        *,
        related: Iterable[Mapping[str, str]] = (),
        payload: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Build and queue an event; returns its id, or None if it could not be built."""
        try:
            body = build_event(event, resource, related=related, payload=payload)
        except Exception:
            log.exception("tripwire: could not build the event %r", event)
            return None
        self.emit(body)
        return str(body["id"])

    @property
    def failing(self) -> bool:
        """True while the last batch could not be delivered (tripwire away or refusing)."""
        return self._failing

    def _in_this_process(self) -> None:
        # After a fork (Airflow 2 forks task runners) the thread stayed with the parent, and
        # the lock may have been held there at that instant: start afresh.
        if os.getpid() != self._pid:
            self._start()

    def _enqueue(self, event: Event) -> None:
        self._in_this_process()
        with self._lock:
            if self._closing:
                self._drop(1, "the emitter is closed")
                return
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self._drop(1, f"the queue is full ({self.max_queue}); dropped the oldest")
            self._queue.append(event)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tripwire-emitter", daemon=True
                )
                self._thread.start()
            self._lock.notify_all()

    def _drop(self, count: int, why: str) -> None:
        """Count lost events (called with the lock held)."""
        self.dropped += count
        # The first loss is a warning, then every thousandth: never a log line per event.
        if self.dropped == count or self.dropped // 1000 != (self.dropped - count) // 1000:
            log.warning("tripwire: %d event(s) lost so far: %s", self.dropped, why)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._lock.wait()
                if not self._queue:
                    return
                size = min(self.batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(size)]
                self._in_flight = len(batch)
            try:
                self._send(batch)
            except Exception:
                log.exception("tripwire: sending a batch failed")
                with self._lock:
                    self._drop(len(batch), "sending failed unexpectedly")
            with self._lock:
                self._in_flight = 0
                self._lock.notify_all()

    def _send(self, batch: list[Event]) -> None:
        outcome = send_batch(
            self.api_url,
            batch,
            headers=self._headers,
            timeout=self.timeout,
            retries=self.retries,
            wait=self._wait,
            backoff=self._backoff,
        )
        if outcome.bad_event and len(batch) > 1:
            # One bad event (too large, invalid) must not cost the others: halve and resend.
            middle = len(batch) // 2
            self._send(batch[:middle])
            self._send(batch[middle:])
            return
        with self._lock:
            if outcome.delivered:
                self.delivered += len(batch)
                if self._failing:
                    log.info("tripwire: sending events to %s works again", self.api_url)
                self._failing = False
            else:
                log.debug("tripwire: %s", outcome.problem)
                self._failing = True
                self._drop(len(batch), outcome.problem)

    def _wait(self, seconds: float) -> bool:
        """Wait between retries; True when closing, so that close() is not held up."""
        with self._lock:
            self._lock.wait_for(lambda: self._closing, timeout=seconds)
            return self._closing

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to `timeout` seconds until every queued event was sent (or given up on)."""
        self._in_this_process()
        deadline = time.monotonic() + timeout
        with self._lock:
            return self._lock.wait_for(
                lambda: (not self._queue and not self._in_flight) or self._thread is None,
                timeout=max(0.0, deadline - time.monotonic()),
            )

    def flush_unless_failing(self, timeout: float) -> bool:
        """flush(), but at once while tripwire is known to be unreachable.

        For processes about to end (an Airflow task's): an outage must not slow each one.
        """
        return False if self._failing else self.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (for up to `timeout` seconds), then stop; drop later events."""
        self.flush(timeout)
        with self._lock:
            self._closing = True
            lost = len(self._queue)
            self._queue.clear()
            self._lock.notify_all()
            thread = self._thread
            if lost:
                self._drop(lost, f"still queued after {timeout}s when closing")
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)


_default: Emitter | None = None
_default_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # The parent's threads are gone; a lock one of them held would never be released.
    global _default_lock
    _default_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def default_emitter() -> Emitter:
    """The process-wide emitter, configured by TRIPWIRE_URL and TRIPWIRE_API_KEY."""
    global _default
    with _default_lock:
        if _default is None or _default._pid != os.getpid():
            _default = Emitter()
        return _default


def emit_event(
    event: str,
    resource: Mapping[str, str] | str,
    *,
    related: Iterable[Mapping[str, str]] = (),
    payload: Mapping[str, Any] | None = None,
) -> str | None:
    """Queue an event on the process-wide emitter; returns its id. Never raises."""
    return default_emitter().emit_event(event, resource, related=related, payload=payload)


def flush(timeout: float = 5.0) -> bool:
    """Wait (up to `timeout` seconds) until the process-wide emitter sent what it holds."""
    emitter = _default
    return emitter.flush(timeout) if emitter is not None else True


def _flush_at_exit() -> None:
    flush(flush_timeout(5.0))


atexit.register(_flush_at_exit)
