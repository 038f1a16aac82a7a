"""Why a webhook request is refused.

EventsError
└── WebhookRejected                -- answered with `status`; kept and announced
    ├── BadSignature               -- 401: missing, malformed or wrong signature
    ├── BodyTooLarge               -- 413: over the webhook's max_bytes
    └── SecretUnavailable          -- 500: the webhook's secret does not render
"""

from __future__ import annotations

from events.errors import EventsError


class WebhookRejected(EventsError):
    """A request the webhook refuses; `status` is the HTTP answer, `field` what is at fault."""

    status = 422

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


class BadSignature(WebhookRejected):
    """The request is not signed with the webhook's secret."""

    status = 401


class BodyTooLarge(WebhookRejected):
    """The body is larger than the webhook accepts."""

    status = 413


class SecretUnavailable(WebhookRejected):
    """The secret to check signatures with is not set (a server-side misconfiguration)."""

    status = 500
