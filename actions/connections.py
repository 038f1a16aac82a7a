"""Named connections defined in YAML (`connections:` next to `automations:`), stored by
`tripwire apply`, and resolved by the worker when a Prefect action names one.

Usage::

    store = ConnectionStore(engine)
    await store.apply([ConnectionDefinition(name="staging", api_url="https://p/api",
                                            api_key="{{ secret('STAGING_KEY') }}")])
    book = ConnectionBook(settings_connections, store)
    connection = await book.get("staging", templates)  # api_key rendered, then redacted

A definition keeps its templates as written: secrets are rendered only when an action
uses the connection, so the database and `GET /api/connections` never hold their values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.blocks import DEFAULT_TTL, BlockDocuments
from actions.errors import ActionFailed, ActionRetry
from actions.prefect_api import PrefectConnection, PrefectConnections
from actions.tables import connections
from actions.templating import Templates
from events.reconcile import Change, Kind, applying, reconcile
from events.templating import parsed_template

log = logging.getLogger("tripwire.actions")

NAME = re.compile(r"^[A-Za-z0-9._-]+$")
CACHE_SECONDS = 2.0  # how long the worker trusts its copy of the stored connections
WHERE_TO_DEFINE = (
    "define it under connections: in a YAML file and tripwire apply it, "
    "or in TRIPWIRE_PREFECT_CONNECTIONS"
)


class ConnectionDefinition(BaseModel):
    """One `connections:` entry; `api_key` and `auth_string` are usually
    `{{ secret('NAME') }}` templates, kept unrendered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1,
        max_length=100,
        description="What actions put in `connection:`; letters, digits, '-', '_' and '.'.",
    )
    type: Literal["prefect"] = Field(default="prefect", description="A Prefect server's API.")
    api_url: str = Field(description="The API root, e.g. https://prefect.internal/api.")
    api_key: str | None = Field(
        default=None, description="Prefect Cloud key (Bearer); a template, e.g. a secret()."
    )
    auth_string: str | None = Field(
        default=None, description="Self-hosted basic auth 'user:pass'; a template."
    )
    ui_url: str | None = Field(
        default=None,
        description="The Prefect UI templates' ui_url filters link to; default: derived from "
        "api_url as Prefect does (the API URL without /api; app.prefect.cloud on Cloud).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"{value!r}: use letters, digits, '-', '_' and '.' only")
        return value

    @field_validator("api_url", "ui_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or "{" in value:
            raise ValueError(f"must be an http(s) URL (not a template), got {value!r}")
        return value.rstrip("/")

    @field_validator("api_key", "auth_string")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return parsed_template(value)

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        if self.api_key is not None and self.auth_string is not None:
            raise ValueError("set api_key (Prefect Cloud) or auth_string (self-hosted), not both")
        return self

    def render(self, templates: Templates) -> PrefectConnection:
        """The connection with its secrets rendered (and so masked by `Secrets.redact`)."""

        def rendered(field: str) -> SecretStr | None:
            source = getattr(self, field)
            if source is None:
                return None
            return SecretStr(templates.render(source, {}, f"{field} of connection {self.name!r}"))

        return PrefectConnection(
            api_url=self.api_url,
            api_key=rendered("api_key"),
            auth_string=rendered("auth_string"),
            ui_url=self.ui_url,
        )


@dataclass(frozen=True)
class StoredConnection:
    """A connection as stored, with its timestamps."""

    definition: ConnectionDefinition
    created: datetime
    updated: datetime

    def as_json(self) -> dict[str, Any]:
        """The definition as written (templates, not secrets) plus created/updated."""
        data = self.definition.model_dump(mode="json")
        data["created"] = self.created.isoformat()
        data["updated"] = self.updated.isoformat()
        return data


def _from_row(row: Any) -> StoredConnection:
    return StoredConnection(
        ConnectionDefinition.model_validate(row.definition), row.created, row.updated
    )


class ConnectionKind(Kind[ConnectionDefinition]):
    """Connections for `reconcile`: a definition by name, nothing evaluated, so no state
    and no reload."""

    table = connections
    section = "connections"
    raced = "a connection was created meanwhile by another apply; apply again"

    def same(self, row: Any, item: ConnectionDefinition) -> bool:
        return ConnectionDefinition.model_validate(row.definition) == item


CONNECTIONS = ConnectionKind()


class ConnectionStore:
    """Reads and applies the `connections` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def all(self) -> list[StoredConnection]:
        """Every stored connection, by name."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(connections).order_by(connections.c.name))).all()
        return [_from_row(row) for row in rows]

    async def get(self, name: str) -> StoredConnection | None:
        """One connection by name, or None."""
        async with self.engine.connect() as conn:
            query = select(connections).where(connections.c.name == name)
            row = (await conn.execute(query)).first()
        return None if row is None else _from_row(row)

    async def apply(
        self,
        wanted: Sequence[ConnectionDefinition],
        *,
        prune: bool = False,
        dry_run: bool = False,
    ) -> list[Change]:
        """Create or update by name (and with `prune`, delete the ones not given).

        Idempotent: applying the same definitions again reports them `unchanged`.
        """
        async with applying(self.engine, dry_run=dry_run) as conn:
            return await reconcile(conn, CONNECTIONS, wanted, prune=prune, dry_run=dry_run)


class ConnectionBook:
    """Where a Prefect action's connection comes from: the settings (the default server and
    TRIPWIRE_PREFECT_CONNECTIONS) first, then the stored connections, read at most every
    `cache_seconds` so a burst of actions does not read the table for each one. `blocks`
    keeps the Prefect blocks notifications name for `block_ttl`."""

    def __init__(
        self,
        settings: PrefectConnections | None = None,
        store: ConnectionStore | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        cache_seconds: float = CACHE_SECONDS,
        block_ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        self.settings = settings or PrefectConnections()
        self.store = store
        # Prefect servers are the operator's (settings, or applied through the API), and
        # often on a private network: their calls skip the guard automations' URLs get.
        self.http = http
        self.cache_seconds = cache_seconds
        self.blocks = BlockDocuments(block_ttl)
        self._cached: dict[str, ConnectionDefinition] = {}
        self._read_at: float | None = None
        self._lock = asyncio.Lock()
        self._warned: set[str] = set()

    async def get(self, name: str | None, templates: Templates) -> PrefectConnection:
        """The connection an action asked for (None: the default server); ActionFailed when
        there is none of that name, or when its secrets do not render."""
        if name is None:
            return self.settings.get(None)
        if name in self.settings.named:
            with contextlib.suppress(ActionRetry):
                await self._stored()  # only to warn when a stored one has the same name
            return self.settings.named[name]
        stored = await self._stored()
        definition = stored.get(name)
        if definition is None:
            known = ", ".join(sorted({*self.settings.named, *stored})) or "none"
            raise ActionFailed(
                f"no Prefect connection named {name!r}; known: {known} ({WHERE_TO_DEFINE})"
            )
        return definition.render(templates)

    async def _stored(self) -> dict[str, ConnectionDefinition]:
        if self.store is None:
            return {}
        async with self._lock:  # one read for a burst of actions
            fresh = self._read_at is not None and (
                time.monotonic() - self._read_at < self.cache_seconds
            )
            if not fresh:
                try:
                    found = await self.store.all()
                except SQLAlchemyError as exc:
                    raise ActionRetry(
                        f"cannot read the stored connections: {type(exc).__name__}"
                    ) from None
                self._cached = {c.definition.name: c.definition for c in found}
                self._read_at = time.monotonic()
                self._warn_shadowed()
            return self._cached

    def _warn_shadowed(self) -> None:
        for name in sorted(set(self._cached) & set(self.settings.named) - self._warned):
            self._warned.add(name)
            log.warning(
                "connection %r is defined in TRIPWIRE_PREFECT_CONNECTIONS and applied from a "
                "file; actions use the one in the settings",
                name,
            )
