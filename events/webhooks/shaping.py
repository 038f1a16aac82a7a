"""A webhook request turned into an event: by the webhook's Jinja template, by its JMESPath
mapping, as a CloudEvent, or else with defaults (`webhook.<slug>.received` on resource
`tripwire.webhook.<slug>`, the body as payload).

Whatever shaped it, the event gets the webhook as a related resource (role `webhook`), and
an id from the sender's delivery id when it has one, so a redelivery is stored once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl
from uuid import NAMESPACE_URL, UUID, uuid5

import jmespath.exceptions
import orjson
from jmespath import functions
from pydantic import ValidationError

from events import cloudevents
from events.errors import InvalidEvent, TemplateError
from events.model import RESOURCE_ID, RESOURCE_ROLE, Event, ReceivedEvent
from events.parsing import describe
from events.templating import Templates
from events.webhooks.model import WebhookDefinition, WebhookMapping, compile_expression

EVENT_FIELDS = frozenset(Event.model_fields)
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Incoming:
    """One request to a webhook: what templates and mappings see."""

    slug: str
    method: str
    headers: Mapping[str, str]  # names lower-cased
    query: Mapping[str, str]  # a repeated name keeps its last value
    body: bytes
    received: datetime

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @cached_property
    def parsed_body(self) -> Any:
        """The body as JSON when it is JSON, form fields as a dict, else text (None if empty)."""
        if not self.body.strip():
            return None
        if self.media_type == FORM:
            return dict(parse_qsl(self.body.decode("utf-8", errors="replace")))
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return self.body.decode("utf-8", errors="replace")

    def context(self) -> dict[str, Any]:
        """The names a template renders with."""
        return {
            "body": self.parsed_body,
            "headers": dict(self.headers),
            "query": dict(self.query),
            "method": self.method,
            "received": self.received.isoformat(),
            "slug": self.slug,
        }


def delivery_uuid(slug: str, delivery: str) -> UUID:
    """The event id for a sender's delivery id: itself when a UUID (GitHub's are), else one
    derived from the webhook and the delivery id, the same each time it is redelivered."""
    try:
        return UUID(delivery)
    except ValueError:
        return uuid5(NAMESPACE_URL, f"tripwire.webhook.{slug}#{delivery}")


def _from_template(webhook: WebhookDefinition, incoming: Incoming, templates: Templates) -> Any:
    assert webhook.template is not None
    try:
        text = templates.render(webhook.template, incoming.context(), f"of {webhook.slug!r}")
    except TemplateError as exc:
        raise InvalidEvent(exc.error, field="template") from None
    try:
        fields = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(
            f"the rendered text is not JSON ({exc}); use |tojson for values from the request",
            field="template",
        ) from None
    if not isinstance(fields, dict):
        raise InvalidEvent("must render a JSON object (the event's fields)", field="template")
    unknown = sorted(set(fields) - EVENT_FIELDS)
    if unknown:
        raise InvalidEvent(
            f"renders {', '.join(map(repr, unknown))}, which {'is' if len(unknown) == 1 else 'are'}"
            f" not an event field; use {', '.join(sorted(EVENT_FIELDS - {'received'}))}",
            field="template",
        )
    return fields


class _RequestFunctions(functions.Functions):
    """`header('name')` and `query('name')` for mappings: JMESPath has no variables."""

    def __init__(self, incoming: Incoming) -> None:
        super().__init__()
        self.incoming = incoming

    @functions.signature({"types": ["string"]})
    def _func_header(self, name: str) -> str | None:
        return self.incoming.headers.get(name.lower())

    @functions.signature({"types": ["string"]})
    def _func_query(self, name: str) -> str | None:
        return self.incoming.query.get(name)


def _search(expression: str, body: Any, options: jmespath.Options, field: str) -> Any:
    try:
        return compile_expression(expression).search(body, options=options)
    # TypeError: jmespath's `<` between a string and a number
    except (jmespath.exceptions.JMESPathError, TypeError) as exc:
        raise InvalidEvent(f"{expression!r} failed: {exc}", field=field) from None


def _label(expression: str, body: Any, options: jmespath.Options, field: str) -> str:
    value = _search(expression, body, options, field)
    if value is None:
        raise InvalidEvent(f"{expression!r} found nothing in the request body", field=field)
    if isinstance(value, dict | list):
        kind = "object" if isinstance(value, dict) else "array"
        raise InvalidEvent(f"{expression!r} gave a JSON {kind}, not a text", field=field)
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _from_mapping(mapping: WebhookMapping, incoming: Incoming) -> dict[str, Any]:
    body = incoming.parsed_body
    options = jmespath.Options(custom_functions=_RequestFunctions(incoming))
    fields: dict[str, Any] = {}
    for name in ("event", "occurred", "id"):
        expression = getattr(mapping, name)
        if expression is not None:
            fields[name] = _label(expression, body, options, f"mapping.{name}")
    if mapping.resource is not None:
        fields["resource"] = {
            label: _label(expr, body, options, f"mapping.resource.{label}")
            for label, expr in mapping.resource.items()
        }
    if mapping.related is not None:
        fields["related"] = [
            {
                label: _label(expr, body, options, f"mapping.related[{i}].{label}")
                for label, expr in labels.items()
            }
            for i, labels in enumerate(mapping.related)
        ]
    if mapping.payload is not None:
        payload = _search(mapping.payload, body, options, "mapping.payload")
        if not isinstance(payload, dict):
            raise InvalidEvent(
                f"{mapping.payload!r} gave {orjson.dumps(payload).decode()[:80]}, not a JSON "
                "object",
                field="mapping.payload",
            )
        fields["payload"] = payload
    return fields


def _cloudevent(incoming: Incoming) -> Event | None:
    if cloudevents.is_binary(incoming.headers):
        return cloudevents.from_binary(incoming.headers, incoming.body, incoming.media_type)
    if incoming.media_type == cloudevents.STRUCTURED:
        return cloudevents.from_structured(incoming.parsed_body)
    return None


def _default_payload(body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    return {} if body is None else {"body": body}


def _with_webhook(webhook: WebhookDefinition, resource: Any, related: Any) -> Any:
    """`related` plus the webhook (role `webhook`), unless it is there or is the resource."""
    if not isinstance(related, list | None) or not isinstance(resource, dict):
        return related  # not valid anyway: validation names it
    ids = {r.get(RESOURCE_ID) for r in related or [] if isinstance(r, dict)}
    ids.add(resource.get(RESOURCE_ID))
    if webhook.resource_id in ids:
        return related or []
    return [*(related or []), {RESOURCE_ID: webhook.resource_id, RESOURCE_ROLE: "webhook"}]


def shape(webhook: WebhookDefinition, incoming: Incoming, templates: Templates) -> ReceivedEvent:
    """The event a request makes; InvalidEvent names the field at fault (`template`,
    `mapping.resource.prefect.resource.id`, or the event field that came out wrong)."""
    if webhook.template is not None:
        fields = _from_template(webhook, incoming, templates)
    elif webhook.mapping is not None:
        fields = _from_mapping(webhook.mapping, incoming)
    elif (event := _cloudevent(incoming)) is not None:
        fields = dict(event)
    else:
        fields = {}
    fields.setdefault("event", f"webhook.{webhook.slug}.received")
    fields.setdefault("resource", {RESOURCE_ID: webhook.resource_id})
    if "payload" not in fields:
        fields["payload"] = _default_payload(incoming.parsed_body)
    fields.setdefault("occurred", incoming.received)
    header = webhook.delivery_id_header
    delivery = incoming.headers.get(header, "").strip() if header else ""
    if "id" not in fields and delivery:
        fields["id"] = delivery_uuid(webhook.slug, delivery)
    fields["related"] = _with_webhook(webhook, fields["resource"], fields.get("related"))
    try:
        event = Event.model_validate(fields)
    except ValidationError as exc:
        raise describe(exc) from None
    return event.receive(incoming.received)
