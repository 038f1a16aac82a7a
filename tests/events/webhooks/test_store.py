"""The webhook store on SQLite and PostgreSQL: apply by slug, bounded refused requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from events.secrets import Secrets
from events.webhooks.model import WebhookDefinition
from events.webhooks.rejections import rejection
from events.webhooks.shaping import Incoming
from events.webhooks.store import WebhookStore
from tripwire.database import create_engine, migrate

GITHUB = WebhookDefinition.model_validate(
    {"slug": "github", "signature": {"scheme": "github", "secret": "{{ secret('GH') }}"}}
)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[WebhookStore]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield WebhookStore(engine, keep_rejected=3)
    await engine.dispose()


async def test_apply_creates_keeps_updates_and_prunes_by_slug(store: WebhookStore) -> None:
    open_hook = WebhookDefinition(slug="open")
    changes = await store.apply([GITHUB, open_hook])
    assert [(c.name, c.kind) for c in changes] == [("github", "created"), ("open", "created")]
    again = await store.apply([GITHUB, open_hook])
    assert {c.kind for c in again} == {"unchanged"}
    described = open_hook.model_copy(update={"description": "anyone"})
    dry = await store.apply([described], prune=True, dry_run=True)
    assert [(c.name, c.kind) for c in dry] == [("open", "updated"), ("github", "deleted")]
    assert await store.get("github") == GITHUB  # a dry run changed nothing
    await store.apply([described], prune=True)
    assert [w.definition for w in await store.all()] == [described]
    assert await store.get("github") is None
    shown = (await store.all())[0].as_json()
    assert shown["slug"] == "open"
    assert {"created", "updated"} <= set(shown)


async def test_refused_requests_are_bounded_per_webhook_newest_first(store: WebhookStore) -> None:
    await store.apply([GITHUB, WebhookDefinition(slug="open")])
    secrets = Secrets(environ={"GH": "the-secret-value"})
    secrets.get("GH")  # handed out: now blanked wherever it appears
    start = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    for index in range(5):
        request = Incoming(
            slug="github",
            method="POST",
            headers={"x-hub-signature-256": "sha256=00", "authorization": "Bearer t", "x-n": "1"},
            query={"token": "t0ken", "page": "the-secret-value"},
            body=f'{{"n": {index}, "leak": "the-secret-value"}}'.encode(),
            received=start + timedelta(seconds=index),
        )
        kept = rejection(
            request, 401, "does not match", None, secrets=secrets, hidden_headers=set()
        )
        await store.reject(kept)
    other = Incoming("open", "POST", {}, {}, b"{}", start)
    await store.reject(rejection(other, 422, "bad", "event", secrets=secrets, hidden_headers=()))

    found = await store.rejected("github")
    assert [r["body"][:7] for r in found] == ['{"n": 4', '{"n": 3', '{"n": 2']
    assert all("the-secret-value" not in str(r) for r in found)
    assert found[0]["headers"] == {
        "x-hub-signature-256": "***",
        "authorization": "***",
        "x-n": "1",
    }
    assert found[0]["query"] == "token=***&page=***"
    assert found[0]["status"] == 401
    assert found[0]["received"] == (start + timedelta(seconds=4)).isoformat()
    assert len(await store.rejected("open")) == 1
    await store.apply([WebhookDefinition(slug="open")], prune=True)
    assert await store.rejected("github") == []  # pruned with its webhook
