"""HTTP routes: `POST /hooks/{slug}` for senders, `/api/webhooks` to apply and inspect.

A webhook's signature is its authentication: senders such as GitHub cannot send tripwire's
API key, so the app lets /hooks/ through its API auth. A webhook without a signature then
asks for the API key itself whenever API auth is configured (`authorized`), so it never
opens a way around it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from events import clock
from events.api import json_response, problem
from events.bus import Bus
from events.errors import (
    ApplyRefused,
    BusUnavailable,
    EventTooLarge,
    InvalidEvent,
    TemplateError,
)
from events.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED
from events.parsing import encode
from events.problems import ReadableErrors, refused
from events.templating import Templates
from events.webhooks.errors import (
    BadSignature,
    BodyTooLarge,
    SecretUnavailable,
    WebhookRejected,
)
from events.webhooks.model import WebhookDefinition
from events.webhooks.rejections import rejected_event, rejection
from events.webhooks.shaping import Incoming, shape
from events.webhooks.signatures import signature_headers, verify
from events.webhooks.store import KEEP_REJECTED, WebhookStore

log = logging.getLogger("tripwire.webhooks")

Authorized = Callable[[str | None], bool]  # an Authorization header is good for the API
_METRIC_REASONS = {401: "unauthorized", 413: "too_large", 500: "misconfigured"}


class WebhooksBody(BaseModel):
    """Body of POST /api/webhooks/apply: the complete set of webhooks to apply."""

    model_config = ConfigDict(extra="forbid")

    webhooks: list[WebhookDefinition] = Field(description="Created or updated by slug.")


async def _read(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, and whether it was over `limit` (then only its start was read)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def build_router(
    bus: Bus, store: WebhookStore, templates: Templates, authorized: Authorized | None = None
) -> APIRouter:
    """`POST /hooks/{slug}` and the routes under /api/webhooks."""
    router = APIRouter(tags=["webhooks"], route_class=ReadableErrors)

    def secrets(webhook: WebhookDefinition) -> list[str]:
        assert webhook.signature is not None
        try:
            return [
                templates.render(source, {}, "signature.secret")
                for source in webhook.signature.secrets()
            ]
        except TemplateError as exc:
            raise SecretUnavailable(exc.error, field="signature.secret") from None

    def authenticate(webhook: WebhookDefinition, incoming: Incoming) -> None:
        if webhook.signature is not None:
            verify(
                webhook.signature, secrets(webhook), incoming.headers, incoming.body, clock.now()
            )
        elif authorized is not None and not authorized(incoming.headers.get("authorization")):
            raise BadSignature(
                "this webhook has no signature, so with API auth on it needs the API key "
                "(Authorization header); or give the webhook a signature"
            )

    async def refuse(
        webhook: WebhookDefinition, incoming: Incoming, exc: WebhookRejected | InvalidEvent
    ) -> Response:
        status = exc.status if isinstance(exc, WebhookRejected) else 422
        status = 413 if isinstance(exc, EventTooLarge) else status
        reason = exc.reason if isinstance(exc, WebhookRejected) else exc.message
        if webhook.signature is not None:
            # Rendered secrets are what `redact` blanks: render them even when refusing early.
            with contextlib.suppress(SecretUnavailable):
                secrets(webhook)
        kept = rejection(
            incoming,
            status,
            reason,
            exc.field,
            secrets=templates.secrets,
            hidden_headers=signature_headers(webhook.signature),
        )
        try:
            await store.reject(kept)
        except SQLAlchemyError:
            log.exception("could not keep the request webhook %r refused", webhook.slug)
        header = webhook.delivery_id_header
        delivery = incoming.headers.get(header) if header else None
        try:
            await bus.publish_events(encode([rejected_event(kept, delivery)]))
        except BusUnavailable as error:
            log.warning(
                "could not announce the request webhook %r refused: %s", webhook.slug, error
            )
        EVENTS_REJECTED.labels("webhook", _METRIC_REASONS.get(status, "invalid")).inc()
        if isinstance(exc, SecretUnavailable):  # the sender cannot fix it: tell it less
            reason = f"the webhook's secret is not set up on the server (rejection {kept.id})"
        return problem(status, f"{exc.field}: {reason}" if exc.field else reason, exc.field)

    @router.post("/hooks/{slug}", status_code=202, summary="Receive a webhook")
    async def receive_webhook(slug: str, request: Request) -> Response:
        """Checks the signature, shapes the event, and answers 202 with its id once JetStream
        acknowledged it; 401, 404, 413 or 422 (kept: `GET /api/webhooks/{slug}/rejected`)."""
        webhook = await store.get(slug)
        if webhook is None:
            EVENTS_REJECTED.labels("webhook", "not_found").inc()
            return problem(
                404, f"no webhook {slug!r}; define it under webhooks: and `tripwire apply` it"
            )
        received = clock.now()
        body, too_large = await _read(request, webhook.max_bytes)
        incoming = Incoming(
            slug=slug,
            method=request.method,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
            body=body,
            received=received,
        )
        try:
            if too_large:
                raise BodyTooLarge(
                    f"the body is over {webhook.max_bytes:,} bytes, this webhook's max_bytes"
                )
            authenticate(webhook, incoming)
            event = shape(webhook, incoming, templates)
            encoded = encode([event])
        except (WebhookRejected, InvalidEvent) as exc:
            return await refuse(webhook, incoming, exc)
        try:
            await bus.publish_events(encoded)
        except BusUnavailable as exc:
            EVENTS_REJECTED.labels("webhook", "bus_unavailable").inc()
            return problem(503, str(exc), **{"Retry-After": str(int(exc.retry_after))})
        EVENTS_ACCEPTED.labels("webhook").inc()
        return json_response({"id": str(event.id), "event": event.event}, 202)

    @router.get("/api/webhooks", summary="Webhooks, by slug (secret templates, not secrets)")
    async def list_webhooks() -> Response:
        return json_response(
            [{**w.as_json(), "url": f"/hooks/{w.definition.slug}"} for w in await store.all()]
        )

    @router.post("/api/webhooks/apply", summary="Create, update (and prune) webhooks by slug")
    async def apply_webhooks(
        body: WebhooksBody,
        prune: bool = Query(False, description="Delete stored webhooks not in the body."),
        dry_run: bool = Query(False, description="Report what would change; change nothing."),
    ) -> Response:
        """`{"webhooks": [...]}` → one change per webhook, `name` being its slug and `kind`
        created, updated, unchanged or deleted."""
        try:
            changes = await store.apply(body.webhooks, prune=prune, dry_run=dry_run)
        except ApplyRefused as exc:
            return refused(exc)
        return json_response([c.as_json() for c in changes])

    @router.get("/api/webhooks/{slug}/rejected", summary="Requests a webhook refused, newest first")
    async def list_rejected(
        slug: str, limit: int = Query(KEEP_REJECTED, ge=1, le=1000)
    ) -> Response:
        """Kept with signature headers, credentials and secret values blanked."""
        found: list[dict[str, Any]] = await store.rejected(slug, limit)
        if not found and await store.get(slug) is None:
            return problem(404, f"no webhook {slug!r}; see GET /api/webhooks")
        return json_response(found)

    return router
