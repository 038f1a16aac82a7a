"""Prefect blocks that send-notification and call-webhook name by `block_document_id`:
read with their secrets from the action's Prefect connection
(`GET /block_documents/{id}?include_secrets=true`), kept for a short while so a burst of
firings reads each block once, and their secret values handed to redaction.

Usage::

    blocks = BlockDocuments(ttl=timedelta(seconds=60))
    block = await resolve(run, action.block_document_id, action.connection)
    block.slug, block.name, block.data   # "slack-webhook", "ops", {"url": ...}
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from actions.errors import ActionFailed
from actions.prefect_api import NO_SERVER, PrefectAPI
from events import clock

if TYPE_CHECKING:
    from actions.execution import Execution

DEFAULT_TTL = timedelta(seconds=60)
REFUSED = frozenset({401, 403})


@dataclass(frozen=True)
class Block:
    """A block document: its type's slug, its name and its data, secrets included."""

    id: UUID
    name: str
    slug: str
    data: Mapping[str, Any]
    secrets: tuple[str, ...]  # the values of the fields its schema marks secret

    def __str__(self) -> str:
        return f"{self.slug} block {self.name!r}"


def _walk(value: Any, parts: list[str]) -> Iterator[Any]:
    if not parts:
        yield value
        return
    head, rest = parts[0], parts[1:]
    if isinstance(value, Mapping):
        children = value.values() if head == "*" else [value[head]] if head in value else []
        for child in children:
            yield from _walk(child, rest)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def secret_values(data: Mapping[str, Any], fields: list[str]) -> tuple[str, ...]:
    """The strings at the schema's `secret_fields` paths (`url`, `headers.*`, `secrets.*`)."""
    found = {
        s for path in fields for value in _walk(data, path.split(".")) for s in _strings(value)
    }
    return tuple(sorted(found))


def parse_block(body: Any, block_id: UUID) -> Block:
    """A block document from Prefect's answer; ActionFailed when it is not one."""
    try:
        schema_fields = (body.get("block_schema") or {}).get("fields") or {}
        data = body["data"]
        if not isinstance(data, Mapping):
            raise TypeError("data is not an object")
        return Block(
            id=block_id,
            name=str(body.get("name") or block_id),
            slug=str(body["block_type"]["slug"]),
            data=data,
            secrets=secret_values(data, list(schema_fields.get("secret_fields") or [])),
        )
    except (AttributeError, KeyError, TypeError) as exc:
        raise ActionFailed(
            f"Prefect answered block document {block_id} with a body that is not a block "
            f"document ({type(exc).__name__}: {exc})"
        ) from None


async def read_block(api: PrefectAPI, block_id: UUID) -> Block:
    """One block document with its secrets, straight from the server."""
    try:
        body = await api.fetch(
            "GET",
            f"/block_documents/{block_id}?include_secrets=true",
            missing=f"block document {block_id}",
        )
    except ActionFailed as exc:
        if exc.status_code == 404:
            raise ActionFailed(
                f"{exc.message}; check block_document_id, and that the action's connection "
                "is the server the block was saved on",
                status_code=404,
            ) from None
        if exc.status_code in REFUSED:
            raise ActionFailed(
                f"{exc.message}; check the connection's api_key or auth_string",
                status_code=exc.status_code,
            ) from None
        raise
    return parse_block(body, block_id)


@dataclass(frozen=True)
class _Entry:
    block: Block
    expires: datetime


class BlockDocuments:
    """Block documents read from Prefect, each kept for `ttl` (one worker's copy); a burst
    of actions naming the same block waits for one read instead of making one each."""

    def __init__(self, ttl: timedelta = DEFAULT_TTL) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, UUID], _Entry] = {}
        self._locks: dict[tuple[str, UUID], asyncio.Lock] = {}

    async def get(self, api: PrefectAPI, block_id: UUID) -> Block:
        """The block from the cache while fresh, else from the server."""
        key = (api.url, block_id)
        cached = self._fresh(key)
        if cached is not None:
            return cached
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._fresh(key)  # read meanwhile by the action that held the lock
            if cached is not None:
                return cached
            block = await read_block(api, block_id)
            if self.ttl > timedelta(0):
                self._entries[key] = _Entry(block, clock.now() + self.ttl)
            return block

    def _fresh(self, key: tuple[str, UUID]) -> Block | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if clock.now() >= entry.expires:
            del self._entries[key]
            return None
        return entry.block


async def resolve(run: Execution, block_id: UUID, connection: str | None) -> Block:
    """The block an action names, read through its connection (or the default server);
    its secret values are redacted from everything the action reports from then on."""
    book = run.prefect
    if book is None:
        raise ActionFailed(NO_SERVER)
    api = PrefectAPI(book.http or run.http, await book.get(connection, run.templates))
    block = await book.blocks.get(api, block_id)
    run.templates.secrets.remember(*block.secrets)
    return block
