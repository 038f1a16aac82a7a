"""CloudEvents 1.0 to tripwire events.

Mapping: `type` -> `event`, `time` -> `occurred` (now when absent), `subject` (or else
`source`) -> `prefect.resource.id`, `data` -> `payload` (a non-object is wrapped as
`{"data": value}`), `id` -> `id` (used as is when a UUID, otherwise a UUID derived from
`source` + `id`, so a redelivered CloudEvent is stored once). `source`, `id`, `subject`,
`dataschema` and extension attributes become resource labels prefixed `cloudevents.`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from pydantic import ValidationError

from events.errors import InvalidEvent
from events.model import RESOURCE_ID, Event

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
_AS_LABELS = ("source", "id", "subject", "dataschema")
_CONTEXT = {
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
}


def is_binary(headers: Mapping[str, str]) -> bool:
    """Binary mode: the attributes arrive as ce-* headers."""
    return "ce-specversion" in headers


def _event_id(source: str, ce_id: str) -> UUID:
    try:
        return UUID(ce_id)
    except ValueError:
        return uuid5(NAMESPACE_URL, f"{source}#{ce_id}")


def to_event(attributes: Mapping[str, Any], data: Any, where: str) -> Event:
    """Map CloudEvents attributes plus data to an Event."""
    for name in REQUIRED:
        if not attributes.get(name):
            raise InvalidEvent(
                f"the CloudEvents attribute '{name}' is required", field=f"{where}{name}"
            )
    if str(attributes["specversion"]) != "1.0":
        raise InvalidEvent(
            f"specversion {attributes['specversion']!r} is not supported; send 1.0",
            field=f"{where}specversion",
        )
    source, ce_id = str(attributes["source"]), str(attributes["id"])
    labels = {RESOURCE_ID: str(attributes.get("subject") or source)}
    for name, value in attributes.items():
        if value is not None and (name not in _CONTEXT or name in _AS_LABELS):
            labels[f"cloudevents.{name}"] = str(value)
    fields: dict[str, Any] = {
        "event": attributes["type"],
        "resource": labels,
        "payload": data if isinstance(data, dict) else ({} if data is None else {"data": data}),
        "id": _event_id(source, ce_id),
    }
    if attributes.get("time"):
        fields["occurred"] = attributes["time"]
    try:
        return Event.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = {"event": "type", "occurred": "time"}.get(str(first["loc"][0]), "data")
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidEvent(message, field=f"{where}{name}") from exc


def from_structured(document: Any, where: str = "") -> Event:
    """A structured-mode CloudEvent (one JSON object)."""
    if not isinstance(document, dict):
        raise InvalidEvent("a structured CloudEvent must be a JSON object", field=where or None)
    data = document.get("data")
    if data is None and "data_base64" in document:
        data = {"data_base64": document["data_base64"]}
    return to_event(document, data, where)


def from_batch(documents: Any) -> list[Event]:
    """A batch-mode body: a JSON array of structured CloudEvents."""
    if not isinstance(documents, list) or not documents:
        raise InvalidEvent("a CloudEvents batch must be a non-empty JSON array")
    return [from_structured(doc, f"[{i}].") for i, doc in enumerate(documents)]


def from_binary(headers: Mapping[str, str], body: bytes, media_type: str) -> Event:
    """A binary-mode CloudEvent: ce-* headers carry the attributes, the body is data."""
    attributes: dict[str, Any] = {
        key[3:].lower(): value for key, value in headers.items() if key.lower().startswith("ce-")
    }
    data: Any = None
    if body:
        if media_type in ("application/json", "") or media_type.endswith("+json"):
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InvalidEvent(
                    f"the body is not valid JSON ({exc}) but the content type says JSON",
                    field="data",
                ) from exc
        else:
            data = body.decode("utf-8", errors="replace")
    return to_event(attributes, data, "ce-")
