"""Requests into events: templates, mappings, CloudEvents, defaults, ids from deliveries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from events.errors import InvalidEvent
from events.secrets import Secrets
from events.templating import Templates
from events.webhooks.model import WebhookDefinition
from events.webhooks.shaping import Incoming, delivery_uuid, shape

RECEIVED = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TEMPLATES = Templates(Secrets(environ={}))

GITHUB_TEMPLATE = """\
{"event": "github.{{ headers['x-github-event'] }}",
 "resource": {"prefect.resource.id": "github.repo.{{ body.repository.full_name }}"},
 "payload": {{ body | tojson }}}
"""
VENDOR_MAPPING = {
    "event": "join('.', ['vendor', type])",
    "resource": {"prefect.resource.id": "join('.', ['vendor.object', data.id])"},
    "payload": "data",
}


def incoming(body: Any = None, headers: dict[str, str] | None = None, **query: str) -> Incoming:
    raw = body if isinstance(body, bytes) else (b"" if body is None else orjson.dumps(body))
    return Incoming(
        slug="hook",
        method="POST",
        headers={"content-type": "application/json", **(headers or {})},
        query=query,
        body=raw,
        received=RECEIVED,
    )


def hook(**fields: Any) -> WebhookDefinition:
    return WebhookDefinition.model_validate({"slug": "hook", **fields})


def test_the_issues_github_template() -> None:
    delivery = str(uuid.uuid4())
    push = {"repository": {"full_name": "acme/etl"}, "ref": "refs/heads/main"}
    request = incoming(push, {"x-github-event": "push", "x-github-delivery": delivery})
    webhook = hook(
        signature={"scheme": "github", "secret": "{{ secret('GH') }}"}, template=GITHUB_TEMPLATE
    )
    event = shape(webhook, request, TEMPLATES)
    assert event.event == "github.push"
    assert event.resource == {"prefect.resource.id": "github.repo.acme/etl"}
    assert event.payload == push
    assert str(event.id) == delivery  # GitHub's delivery ids are UUIDs: kept as they are
    assert event.received == RECEIVED
    assert event.related == [
        {"prefect.resource.id": "tripwire.webhook.hook", "prefect.resource.role": "webhook"}
    ]


def test_the_issues_vendor_mapping_with_header_and_query_functions() -> None:
    body = {"type": "invoice.paid", "data": {"id": "in_42", "amount": 1200}}
    request = incoming(body, {"webhook-id": "msg_1", "x-tenant": "eu"}, region="west")
    webhook = hook(
        signature={"scheme": "standard-webhooks", "secret": "{{ secret('V') }}"},
        mapping={
            **VENDOR_MAPPING,
            "resource": {
                "prefect.resource.id": "join('.', ['vendor.object', data.id])",
                "tenant": "header('X-Tenant')",
                "region": "query('region')",
                "amount": "data.amount",
            },
        },
    )
    event = shape(webhook, request, TEMPLATES)
    assert event.event == "vendor.invoice.paid"
    assert event.resource == {
        "prefect.resource.id": "vendor.object.in_42",
        "tenant": "eu",
        "region": "west",
        "amount": "1200",
    }
    assert event.payload == body["data"]
    assert event.id == delivery_uuid("hook", "msg_1")
    assert event.id == uuid.uuid5(uuid.NAMESPACE_URL, "tripwire.webhook.hook#msg_1")


def test_defaults_when_neither_template_nor_mapping() -> None:
    event = shape(hook(), incoming({"rows": 3}), TEMPLATES)
    assert event.event == "webhook.hook.received"
    assert event.resource == {"prefect.resource.id": "tripwire.webhook.hook"}
    assert event.payload == {"rows": 3}
    assert event.related == []
    text = shape(hook(), incoming(b"plain words", {"content-type": "text/plain"}), TEMPLATES)
    assert text.payload == {"body": "plain words"}
    form = incoming(b"a=1&b=two", {"content-type": "application/x-www-form-urlencoded"})
    assert shape(hook(), form, TEMPLATES).payload == {"a": "1", "b": "two"}


def test_cloudevents_are_mapped_without_a_template() -> None:
    binary = incoming(
        {"rows": 3},
        {
            "ce-specversion": "1.0",
            "ce-id": "42",
            "ce-source": "urn:etl",
            "ce-type": "etl.done",
            "ce-subject": "etl.job.nightly",
        },
    )
    event = shape(hook(), binary, TEMPLATES)
    assert (event.event, event.resource.id, event.payload) == (
        "etl.done",
        "etl.job.nightly",
        {"rows": 3},
    )
    assert event.related[0]["prefect.resource.id"] == "tripwire.webhook.hook"
    structured = incoming(
        {"specversion": "1.0", "id": "7", "source": "urn:x", "type": "x.y", "data": {"a": 1}},
        {"content-type": "application/cloudevents+json"},
    )
    event = shape(hook(), structured, TEMPLATES)
    assert (event.event, event.resource.id, event.payload) == ("x.y", "urn:x", {"a": 1})


@pytest.mark.parametrize(
    ("template", "field", "words"),
    [
        ('{"event": "x.{{ body.missing.deeper }}"}', "template", "no attribute 'missing'"),
        ('{"event": {{ body.name }}}', "template", "not JSON"),
        ('["x"]', "template", "JSON object"),
        ('{"evnet": "x"}', "template", "'evnet', which is not an event field"),
        ('{"event": "x", "resource": {"id": "r"}}', "resource", "prefect.resource.id"),
        ('{"event": "x", "occurred": "yesterday"}', "occurred", "datetime"),
        ("{% for %}", None, "does not parse"),
    ],
)
def test_template_failures_name_the_field_and_the_reason(
    template: str, field: str | None, words: str
) -> None:
    if field is None:  # a syntax error is refused when the definition is loaded
        with pytest.raises(ValidationError, match=words):
            hook(template=template)
        return
    with pytest.raises(InvalidEvent) as info:
        shape(hook(template=template), incoming({"name": "n"}), TEMPLATES)
    assert info.value.field == field
    assert words in info.value.message


@pytest.mark.parametrize(
    ("mapping", "field", "words"),
    [
        ({"event": "kind"}, "mapping.event", "found nothing"),
        ({"event": "data"}, "mapping.event", "JSON object, not a text"),
        ({"resource": {"prefect.resource.id": "nope"}}, "mapping.resource.prefect.resource.id", ""),
        ({"payload": "type"}, "mapping.payload", "not a JSON object"),
    ],
)
def test_mapping_failures_name_the_field(mapping: dict[str, Any], field: str, words: str) -> None:
    body = {"type": "t", "data": {"id": 1}}
    with pytest.raises(InvalidEvent) as info:
        shape(hook(mapping=mapping), incoming(body), TEMPLATES)
    assert info.value.field == field
    assert words in info.value.message


def test_definitions_refuse_literal_secrets_bad_expressions_and_both_shapes() -> None:
    with pytest.raises(ValidationError, match="must be a template"):
        hook(signature={"scheme": "github", "secret": "plain-text-secret"})
    with pytest.raises(ValidationError, match="does not parse"):
        hook(mapping={"event": "join('.',"})
    with pytest.raises(ValidationError, match="not both"):
        hook(template='{"event": "x"}', mapping={"event": "type"})
    with pytest.raises(ValidationError, match="header"):
        hook(signature={"scheme": "hmac-sha256", "secret": "{{ secret('S') }}"})
    with pytest.raises(ValidationError, match="letters, digits"):
        hook(slug="no/slash")
