"""Python client: emit events to a running tripwire, sync or async, batched, with retries.

from events import emit_event
emit_event("dbt.model.refreshed", resource={"prefect.resource.id": "dbt.model.sales"})

async with AsyncTripwireClient() as client:
    await client.emit([event1, event2, ...])   # sent in batches of 500
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import httpx

from events.errors import BusUnavailable, InvalidEvent
from events.model import Event

# Address, auth and the retry loop are shared with tripwire-client, the engine-free emitter.
from tripwire_client.config import DEFAULT_API_URL, api_auth_headers, resolve_api_url
from tripwire_client.event import resource_labels
from tripwire_client.retry import Answer, Retry

__all__ = [
    "DEFAULT_API_URL",
    "AsyncTripwireClient",
    "TripwireClient",
    "aemit_event",
    "api_auth_headers",
    "build_event",
    "emit_event",
    "resolve_api_url",
]

BATCH_SIZE = 500
JSON = {"content-type": "application/json"}


def build_event(
    event: str,
    resource: Mapping[str, str] | str,
    *,
    related: Iterable[Mapping[str, str]] = (),
    payload: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Event:
    """An Event from plain values; `resource` may be just the resource id."""
    return Event(
        event=event,
        resource=resource_labels(resource),
        related=[dict(r) for r in related],
        payload=dict(payload or {}),
        **fields,
    )


def _body(batch: Sequence[Event]) -> bytes:
    return b"[" + b",".join(e.model_dump_json().encode() for e in batch) + b"]"


def _answer(response: httpx.Response) -> Answer:
    return Answer(response.status_code, response.headers.get("retry-after"), response.text)


def _no_answer(error: httpx.TransportError) -> Answer:
    return Answer(None, text=str(error) or type(error).__name__)


def _detail(text: str) -> str:
    """The engine's `detail` from an error body, else the body."""
    try:
        return str(json.loads(text).get("detail", text))
    except (ValueError, AttributeError):
        return text


class _Base:
    def __init__(
        self,
        api_url: str | None = None,
        *,
        api_key: str | None = None,
        auth_string: str | None = None,
        retries: int = 8,
        batch_size: int = BATCH_SIZE,
        timeout: float = 30.0,
    ) -> None:
        self.api_url = resolve_api_url(api_url)
        self.retries = retries
        self.batch_size = batch_size
        self._options: dict[str, Any] = {
            "base_url": self.api_url,
            "headers": api_auth_headers(api_key, auth_string),
            "timeout": timeout,
        }

    def _bodies(self, events: Event | Sequence[Event]) -> Iterator[bytes]:
        """Request bodies of at most `batch_size` events each."""
        items = [events] if isinstance(events, Event) else list(events)
        for start in range(0, len(items), self.batch_size):
            yield _body(items[start : start + self.batch_size])

    def _accepted(self, answer: Answer) -> list[UUID]:
        """The ids of a final answer; raise if it is not an acceptance."""
        if answer.status == 202:
            return [UUID(i) for i in json.loads(answer.text)["accepted"]]
        if not answer.retryable:
            raise InvalidEvent(
                f"tripwire refused the events ({answer.status}): {_detail(answer.text)}"
            )
        raise BusUnavailable(
            f"tripwire at {self.api_url} did not accept the events after {self.retries} "
            f"retries ({answer.reason})"
        )


class TripwireClient(_Base):
    """Blocking client."""

    def __enter__(self) -> Self:
        self._http = httpx.Client(**self._options)
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def emit(self, events: Event | Sequence[Event]) -> list[UUID]:
        """Send events (in batches); returns their ids once all were accepted."""
        accepted: list[UUID] = []
        for body in self._bodies(events):
            accepted += self._send(body)
        return accepted

    def _send(self, body: bytes) -> list[UUID]:
        retry = Retry(self.retries)
        while True:
            try:
                answer = _answer(self._http.post("/api/events", content=body, headers=JSON))
            except httpx.TransportError as exc:
                answer = _no_answer(exc)
            delay = retry.delay_after(answer)
            if delay is None:
                return self._accepted(answer)
            time.sleep(delay)


class AsyncTripwireClient(_Base):
    """Asyncio client."""

    async def __aenter__(self) -> Self:
        self._http = httpx.AsyncClient(**self._options)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def emit(self, events: Event | Sequence[Event]) -> list[UUID]:
        """Send events (in batches); returns their ids once all were accepted."""
        accepted: list[UUID] = []
        for body in self._bodies(events):
            accepted += await self._send(body)
        return accepted

    async def _send(self, body: bytes) -> list[UUID]:
        retry = Retry(self.retries)
        while True:
            try:
                answer = _answer(await self._http.post("/api/events", content=body, headers=JSON))
            except httpx.TransportError as exc:
                answer = _no_answer(exc)
            delay = retry.delay_after(answer)
            if delay is None:
                return self._accepted(answer)
            await asyncio.sleep(delay)


def emit_event(event: str, resource: Mapping[str, str] | str, **kwargs: Any) -> UUID:
    """Emit one event and wait until tripwire accepted it; returns its id."""
    api_url = kwargs.pop("api_url", None)
    with TripwireClient(api_url) as client:
        return client.emit(build_event(event, resource, **kwargs))[0]


async def aemit_event(event: str, resource: Mapping[str, str] | str, **kwargs: Any) -> UUID:
    """Async `emit_event`."""
    api_url = kwargs.pop("api_url", None)
    async with AsyncTripwireClient(api_url) as client:
        return (await client.emit(build_event(event, resource, **kwargs)))[0]
