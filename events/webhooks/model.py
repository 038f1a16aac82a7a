"""Webhook definitions: the `webhooks:` entries of definition files.

Usage::

    WebhookDefinition(
        slug="github",
        signature={"scheme": "github", "secret": "{{ secret('GITHUB_WEBHOOK_SECRET') }}"},
        template='{"event": "github.{{ headers[\\'x-github-event\\'] }}", ...}',
    )

Secrets stay templates (`{{ secret('NAME') }}`) in files, the database and the API; they
are rendered per request, when a signature is checked.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Literal, Self

import jmespath
import jmespath.exceptions
from jmespath.parser import ParsedResult
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from events.durations import Duration
from events.templating import parsed_template

SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DEFAULT_MAX_BYTES = 1_000_000
MAX_BYTES = 25 * 1024 * 1024  # GitHub's own cap on a delivery
DEFAULT_TOLERANCE = timedelta(minutes=5)  # Standard Webhooks' recommendation


def _secret_templates(value: str | list[str]) -> str | list[str]:
    sources = [value] if isinstance(value, str) else value
    if not sources:
        raise ValueError("give at least one secret")
    for source in sources:
        if "{{" not in source:
            raise ValueError(
                "must be a template such as \"{{ secret('NAME') }}\", so the secret itself "
                "stays out of files and the database"
            )
        parsed_template(source)
    return value


class _Signature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: str | list[str] = Field(
        description="A template rendering the shared secret, e.g. {{ secret('NAME') }}; a "
        "list of them while rotating (a request signed with any of them is accepted)."
    )

    _secret = field_validator("secret")(_secret_templates)

    def secrets(self) -> list[str]:
        """The secret templates, one or more."""
        return [self.secret] if isinstance(self.secret, str) else list(self.secret)


class GitHubSignature(_Signature):
    """GitHub's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`."""

    scheme: Literal["github"] = Field(description="GitHub webhooks.")


class StandardWebhooksSignature(_Signature):
    """Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature` headers,
    a `whsec_` secret, one or more `v1,<base64>` signatures."""

    scheme: Literal["standard-webhooks"] = Field(description="Standard Webhooks (Svix and others).")
    tolerance: Duration = Field(
        default=DEFAULT_TOLERANCE,
        description="How far webhook-timestamp may be from now, either way (replay guard).",
    )

    @field_validator("tolerance")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be positive, e.g. 5m")
        return value


class HmacSignature(_Signature):
    """A hex or base64 HMAC-SHA256 of the body in a header the sender names."""

    scheme: Literal["hmac-sha256"] = Field(description="A generic HMAC-SHA256 of the body.")
    header: str = Field(min_length=1, description="The header carrying it, e.g. X-Signature.")
    encoding: Literal["hex", "base64"] = Field(default="hex", description="How it is written.")
    prefix: str = Field(default="", description="Text before the signature, e.g. 'sha256='.")


Signature = Annotated[
    GitHubSignature | StandardWebhooksSignature | HmacSignature, Field(discriminator="scheme")
]

DELIVERY_HEADERS = {"github": "x-github-delivery", "standard-webhooks": "webhook-id"}


@lru_cache(maxsize=1024)
def compile_expression(expression: str) -> ParsedResult:
    """A JMESPath expression, compiled once; ValueError says why it does not parse."""
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"JMESPath {expression!r} does not parse: {exc}") from None


def _expressions(labels: dict[str, str]) -> dict[str, str]:
    for label, expression in labels.items():
        try:
            compile_expression(expression)
        except ValueError as exc:
            raise ValueError(f"label {label!r}: {exc}") from None
    return labels


class WebhookMapping(BaseModel):
    """JMESPath expressions over the request body, one per event field; `header('name')`
    and `query('name')` read the request's headers and query string."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: str | None = Field(default=None, description="The event name.")
    resource: dict[str, str] | None = Field(
        default=None, description="Resource labels, each an expression."
    )
    related: list[dict[str, str]] | None = Field(
        default=None, description="Related resources: labels, each an expression."
    )
    payload: str | None = Field(default=None, description="The payload (a JSON object).")
    occurred: str | None = Field(default=None, description="When it happened (ISO 8601).")
    id: str | None = Field(default=None, description="The event id (a UUID).")

    @field_validator("event", "payload", "occurred", "id")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_expression(value)
        return value

    @field_validator("resource")
    @classmethod
    def _labels(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _expressions(value)

    @field_validator("related")
    @classmethod
    def _related(cls, value: list[dict[str, str]] | None) -> list[dict[str, str]] | None:
        return None if value is None else [_expressions(labels) for labels in value]


class WebhookDefinition(BaseModel):
    """One webhook: POST /hooks/<slug> turns a request into an event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(
        min_length=1,
        max_length=100,
        description="The URL path: /hooks/<slug>; letters, digits, '.', '_' and '-'.",
    )
    description: str = Field(default="", description="What sends to it, for people.")
    signature: Signature | None = Field(
        default=None, description="How requests prove who sent them; none: anyone may post."
    )
    template: str | None = Field(
        default=None,
        description="Jinja rendering the event JSON from body, headers, query, method, received.",
    )
    mapping: WebhookMapping | None = Field(
        default=None, description="JMESPath per event field, over the body (not with template)."
    )
    delivery_header: str | None = Field(
        default=None,
        description="Header whose value becomes the event id, so a redelivery is stored once; "
        "default X-GitHub-Delivery (github), webhook-id (standard-webhooks).",
    )
    max_bytes: int = Field(
        default=DEFAULT_MAX_BYTES, ge=1, le=MAX_BYTES, description="Largest body accepted."
    )

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError(f"{value!r}: use letters, digits, '.', '_' and '-' only")
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return parsed_template(value)

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        if self.template is not None and self.mapping is not None:
            raise ValueError("give a template or a mapping, not both")
        return self

    @property
    def resource_id(self) -> str:
        """The webhook as a resource: `tripwire.webhook.<slug>`."""
        return f"tripwire.webhook.{self.slug}"

    @property
    def delivery_id_header(self) -> str | None:
        """The (lower-cased) header holding the sender's delivery id, if any."""
        if self.delivery_header:
            return self.delivery_header.lower()
        return DELIVERY_HEADERS.get(self.signature.scheme) if self.signature else None
