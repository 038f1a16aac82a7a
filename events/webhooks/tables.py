"""Webhook tables, on the shared `events.tables.metadata` (one Alembic history).

`webhooks` keeps each definition as applied: secrets as templates, never their values.
`webhook_rejections` keeps the newest refused requests per webhook, signature headers and
secret values blanked, for `tripwire webhooks rejected SLUG`.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from events.tables import Labels, metadata
from events.timestamps import UTCDateTime

webhooks = Table(
    "webhooks",
    metadata,
    Column("slug", String(100), primary_key=True),
    Column("definition", Labels, nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
)

webhook_rejections = Table(
    "webhook_rejections",
    metadata,
    Column("id", String(36), primary_key=True),  # UUIDv7: newest last, by id alone
    Column("slug", String(100), nullable=False),
    Column("received", UTCDateTime(), nullable=False),
    Column("status", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("field", Text),
    Column("method", String(16), nullable=False),
    Column("query", Text, nullable=False),
    Column("headers", Labels, nullable=False),
    Column("body", Text, nullable=False),  # the first KEPT_BODY characters
    Column("size", Integer, nullable=False),  # of the whole body, in bytes
    Index(None, "slug", "id"),
)
