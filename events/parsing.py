"""Turn request bodies into validated events, with errors that name the field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from events import clock, cloudevents
from events.errors import EventTooLarge, InvalidEvent
from events.keys import EventMessage
from events.model import MAX_EVENT_BYTES, ReceivedEvent

# curl -d sends form-urlencoded by default; a JSON body is what such users mean.
JSON_TYPES = (
    "application/json",
    "text/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
)


def describe(error: ValidationError, prefix: str = "") -> InvalidEvent:
    """One InvalidEvent naming the first failing field (and how many others failed)."""
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return InvalidEvent(
            f"the body is not valid JSON ({first['ctx'].get('error', first['msg'])}); "
            "send one event object or an array of them"
        )
    path = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "this field is required"
    extra = error.error_count() - 1
    if extra:
        message += f" (and {extra} more problem{'s' if extra > 1 else ''})"
    return InvalidEvent(message, field=path.lstrip(".") or None)


def load_json(body: bytes) -> Any:
    """Parse JSON or raise InvalidEvent with the position of the mistake."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(
            f"the body is not valid JSON ({exc}); send one event object or an array of them"
        ) from exc


class _Incoming(ReceivedEvent):
    # Parsing only: `received` is stamped once per request below, not per event.
    received: datetime = datetime.min.replace(tzinfo=UTC)


_received_list = TypeAdapter(list[_Incoming])


def receive_events_json(body: bytes) -> list[ReceivedEvent]:
    """One event object or a JSON array of them, validated straight from the bytes and
    stamped `received` now (a `received` sent by the client is overwritten)."""
    try:
        if body.lstrip()[:1] == b"[":
            events = _received_list.validate_json(body)
            if not events:
                raise InvalidEvent("the array is empty; send at least one event")
        else:
            events = [_Incoming.model_validate_json(body)]
    except ValidationError as exc:
        raise describe(exc) from exc
    received = clock.now()
    for event in events:
        event.received = received
    return events  # type: ignore[return-value]  # _Incoming is a ReceivedEvent


def parse_body(body: bytes, content_type: str, headers: Mapping[str, str]) -> list[ReceivedEvent]:
    """Events from an HTTP request in any of the accepted encodings."""
    media_type = content_type.split(";")[0].strip().lower()
    if cloudevents.is_binary(headers):
        events = [cloudevents.from_binary(headers, body, media_type)]
    elif media_type == cloudevents.STRUCTURED:
        events = [cloudevents.from_structured(load_json(body))]
    elif media_type == cloudevents.BATCH:
        events = cloudevents.from_batch(load_json(body))
    elif media_type in JSON_TYPES or media_type.endswith("+json"):
        return receive_events_json(body)
    else:
        raise InvalidEvent(
            f"unsupported content type '{media_type}'; send application/json, "
            f"{cloudevents.STRUCTURED}, {cloudevents.BATCH} or CloudEvents binary mode"
        )
    received = clock.now()
    return [event.receive(received) for event in events]


def encode(events: list[ReceivedEvent]) -> list[EventMessage]:
    """The events as bus messages (id, JSON, key), enforcing the per-event size limit."""
    encoded = []
    for index, event in enumerate(events):
        data = event.model_dump_json().encode()
        if len(data) > MAX_EVENT_BYTES:
            where = f"[{index}]" if len(events) > 1 else None
            raise EventTooLarge(
                f"the event is {len(data):,} bytes; at most {MAX_EVENT_BYTES:,} are allowed. "
                "Move large data out of the payload and link to it",
                field=where,
            )
        encoded.append(EventMessage(event.id, data, event.resource.id))
    return encoded
