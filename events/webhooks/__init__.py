"""Inbound webhooks: `POST /hooks/{slug}` checks a signature, turns the request into an event
(template, mapping, CloudEvents or defaults) and publishes it; refused requests are kept."""

from events.webhooks.api import build_router
from events.webhooks.errors import BadSignature, BodyTooLarge, SecretUnavailable, WebhookRejected
from events.webhooks.model import (
    GitHubSignature,
    HmacSignature,
    StandardWebhooksSignature,
    WebhookDefinition,
    WebhookMapping,
)
from events.webhooks.rejections import REJECTED_EVENT, Rejection
from events.webhooks.shaping import Incoming, delivery_uuid, shape
from events.webhooks.signatures import verify
from events.webhooks.store import StoredWebhook, WebhookStore

__all__ = [  # noqa: RUF022  (plainly sorted, as tests/test_public_api.py checks)
    "BadSignature",
    "BodyTooLarge",
    "GitHubSignature",
    "HmacSignature",
    "Incoming",
    "REJECTED_EVENT",
    "Rejection",
    "SecretUnavailable",
    "StandardWebhooksSignature",
    "StoredWebhook",
    "WebhookDefinition",
    "WebhookMapping",
    "WebhookRejected",
    "WebhookStore",
    "build_router",
    "delivery_uuid",
    "shape",
    "verify",
]
