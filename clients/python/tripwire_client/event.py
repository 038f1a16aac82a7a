"""Events as plain dicts in tripwire's (and Prefect's) schema, ready to be sent as JSON."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

RESOURCE_ID = "prefect.resource.id"
RESOURCE_ROLE = "prefect.resource.role"
RESOURCE_NAME = "prefect.resource.name"

Event = dict[str, Any]


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 v7), as the engine and Prefect's client make them.

    Ids made here let a retried batch be deduplicated by the engine, and time order keeps
    the store's indexes append-only.
    """
    millis = time.time_ns() // 1_000_000
    value = (millis & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10), "big") & (2**80 - 1)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return uuid.UUID(int=value)


def resource_labels(resource: Mapping[str, str] | str) -> dict[str, str]:
    """Labels of a resource given as its labels or just its id."""
    if isinstance(resource, str):
        return {RESOURCE_ID: resource}
    return dict(resource)


def related_resource(resource_id: str, role: str, **labels: str) -> dict[str, str]:
    """A related resource: its id, its role and any further labels."""
    return {RESOURCE_ID: resource_id, RESOURCE_ROLE: role, **labels}


def build_event(
    event: str,
    resource: Mapping[str, str] | str,
    *,
    related: Iterable[Mapping[str, str]] = (),
    payload: Mapping[str, Any] | None = None,
    occurred: datetime | None = None,
    follows: uuid.UUID | str | None = None,
) -> Event:
    """An event as a JSON-ready dict with a fresh id; `resource` may be just the resource id."""
    body: Event = {
        "id": str(uuid7()),
        "occurred": (occurred or datetime.now(timezone.utc)).isoformat(),
        "event": event,
        "resource": resource_labels(resource),
        "related": [dict(r) for r in related],
        "payload": dict(payload or {}),
    }
    if follows is not None:
        body["follows"] = str(follows)
    return body
