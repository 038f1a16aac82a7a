"""Webhooks applied from files (by slug) and the requests they refused.

Usage::

    store = WebhookStore(engine)
    await store.apply([WebhookDefinition(slug="github", ...)])   # created / updated / ...
    webhook = await store.get("github")
    await store.reject(rejection)            # keeps the newest KEEP_REJECTED per slug
    kept = await store.rejected("github")    # newest first
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.reconcile import Change, Kind, applying, reconcile
from events.webhooks.model import WebhookDefinition
from events.webhooks.rejections import Rejection
from events.webhooks.tables import webhook_rejections, webhooks

KEEP_REJECTED = 100  # refused requests kept per webhook


@dataclass(frozen=True)
class StoredWebhook:
    """A webhook as stored, with its timestamps."""

    definition: WebhookDefinition
    created: datetime
    updated: datetime

    def as_json(self) -> dict[str, Any]:
        """The definition as written (secret templates, not secrets) plus created/updated."""
        data = self.definition.model_dump(mode="json", exclude_defaults=True)
        data["created"] = self.created.isoformat()
        data["updated"] = self.updated.isoformat()
        return data


def _from_row(row: Any) -> StoredWebhook:
    definition = WebhookDefinition.model_validate(row.definition)
    return StoredWebhook(definition, row.created, row.updated)


def _rejection_json(row: Any) -> dict[str, Any]:
    # Column names come as SQLAlchemy's str subclass, which orjson refuses as keys.
    data = {str(key): value for key, value in row._mapping.items()}
    data["received"] = row.received.isoformat()
    return data


class WebhookKind(Kind[WebhookDefinition]):
    """Webhooks for `reconcile`: a definition by slug; deleting one drops the requests it
    refused."""

    table = webhooks
    section = "webhooks"
    key = "slug"
    raced = "a webhook was created meanwhile by another apply; apply again"

    def same(self, row: Any, item: WebhookDefinition) -> bool:
        return WebhookDefinition.model_validate(row.definition) == item

    async def delete(self, conn: AsyncConnection, row: Any) -> None:
        await super().delete(conn, row)
        refused = webhook_rejections
        await conn.execute(delete(refused).where(refused.c.slug == row.slug))


WEBHOOKS = WebhookKind()


class WebhookStore:
    """Reads and applies the `webhooks` table; keeps refused requests."""

    def __init__(self, engine: AsyncEngine, *, keep_rejected: int = KEEP_REJECTED) -> None:
        self.engine = engine
        self.keep_rejected = keep_rejected

    async def all(self) -> list[StoredWebhook]:
        """Every webhook, by slug."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(webhooks).order_by(webhooks.c.slug))).all()
        return [_from_row(row) for row in rows]

    async def get(self, slug: str) -> WebhookDefinition | None:
        """One webhook's definition, or None."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(webhooks).where(webhooks.c.slug == slug))).first()
        return None if row is None else _from_row(row).definition

    async def apply(
        self, wanted: Sequence[WebhookDefinition], *, prune: bool = False, dry_run: bool = False
    ) -> list[Change]:
        """Create or update by slug (with `prune`, delete the others and what they refused).

        Idempotent: applying the same definitions again reports them `unchanged`.
        """
        async with applying(self.engine, dry_run=dry_run) as conn:
            return await reconcile(conn, WEBHOOKS, wanted, prune=prune, dry_run=dry_run)

    async def reject(self, kept: Rejection) -> None:
        """Keep a refused request, dropping that webhook's oldest past `keep_rejected`."""
        table = webhook_rejections
        async with self.engine.begin() as conn:
            await conn.execute(
                table.insert().values(
                    id=str(kept.id),
                    slug=kept.slug,
                    received=kept.received,
                    status=kept.status,
                    reason=kept.reason,
                    field=kept.field,
                    method=kept.method,
                    query=kept.query,
                    headers=kept.headers,
                    body=kept.body,
                    size=kept.size,
                )
            )
            kept_ids = (
                select(table.c.id)
                .where(table.c.slug == kept.slug)
                .order_by(table.c.id.desc())
                .limit(self.keep_rejected)
            )
            await conn.execute(
                delete(table).where(table.c.slug == kept.slug, table.c.id.not_in(kept_ids))
            )

    async def rejected(self, slug: str, limit: int = KEEP_REJECTED) -> list[dict[str, Any]]:
        """The webhook's refused requests, newest first."""
        table = webhook_rejections
        query = select(table).where(table.c.slug == slug).order_by(table.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_rejection_json(row) for row in rows]
