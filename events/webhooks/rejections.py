"""Refused webhook requests: what is kept of them (secrets blanked), and the
`tripwire.webhook.rejected` event each one emits so a misconfigured sender can be alerted on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from uuid6 import uuid7

from events.model import RESOURCE_ID, RESOURCE_NAME, Event, ReceivedEvent
from events.secrets import MASK, Secrets
from events.webhooks.shaping import Incoming

KEPT_BODY = 4_096  # characters of a refused body kept for diagnosis
REJECTED_EVENT = "tripwire.webhook.rejected"
# Credentials that may travel with any request, besides the webhook's signature headers.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token"}
)
_CREDENTIAL_WORDS = ("secret", "token", "signature", "password")


@dataclass(frozen=True)
class Rejection:
    """One refused request, as kept: headers with credentials blanked, the body cut short."""

    slug: str
    status: int
    reason: str
    field: str | None
    method: str
    query: str
    headers: dict[str, str]
    body: str
    size: int
    received: datetime
    id: UUID = dataclasses.field(default_factory=uuid7)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "slug": self.slug,
            "received": self.received.isoformat(),
            "status": self.status,
            "reason": self.reason,
            "field": self.field,
            "method": self.method,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "size": self.size,
        }


def _blanked(name: str, hidden: Collection[str]) -> bool:
    return name in hidden or name in CREDENTIAL_HEADERS or any(w in name for w in _CREDENTIAL_WORDS)


def rejection(
    incoming: Incoming,
    status: int,
    reason: str,
    field: str | None,
    *,
    secrets: Secrets,
    hidden_headers: Collection[str],
    body_kept: bool = True,
) -> Rejection:
    """What is kept of a refused request: `hidden_headers` (the webhook's signature headers),
    other credential headers and query parameters (by name) blanked, and any secret value
    tripwire handed out (`secret()`) blanked wherever it appears."""
    headers = {
        name: MASK if _blanked(name, hidden_headers) else secrets.redact(value)
        for name, value in incoming.headers.items()
    }
    query = {
        name: MASK if _blanked(name.lower(), ()) else value
        for name, value in incoming.query.items()
    }
    body = incoming.body[:KEPT_BODY].decode("utf-8", errors="replace") if body_kept else ""
    return Rejection(
        slug=incoming.slug,
        status=status,
        reason=secrets.redact(reason),
        field=field,
        method=incoming.method,
        query=secrets.redact(urlencode(query, safe="*")),
        headers=headers,
        body=secrets.redact(body),
        size=len(incoming.body),
        received=incoming.received,
    )


def rejected_event(kept: Rejection, delivery: str | None) -> ReceivedEvent:
    """`tripwire.webhook.rejected` on resource `tripwire.webhook.<slug>`."""
    payload: dict[str, Any] = {
        "status": kept.status,
        "reason": kept.reason,
        "field": kept.field,
        "method": kept.method,
        "content_type": kept.headers.get("content-type"),
        "size": kept.size,
        "rejection_id": str(kept.id),
    }
    if delivery:
        payload["delivery"] = delivery
    event = Event.model_validate(
        {
            "event": REJECTED_EVENT,
            "resource": {RESOURCE_ID: f"tripwire.webhook.{kept.slug}", RESOURCE_NAME: kept.slug},
            "payload": payload,
            "occurred": kept.received,
        }
    )
    return event.receive(kept.received)
