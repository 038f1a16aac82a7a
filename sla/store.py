"""SLAs in the database: apply by name, read, delete.

A change bumps `automation_revision` (the definitions' revision) in the same transaction,
so running workers reload SLAs as they reload automations. Changing what an SLA watches
(its fingerprint) drops its windows; changing only actions, description or severity
keeps them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid5

import orjson
from pydantic import TypeAdapter
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events import clock
from sla.errors import SLANotFound
from sla.model import SLA
from sla.tables import sla_windows, slas
from triggers.identity import NAMESPACE
from triggers.repository import Change, ChangeKind
from triggers.tables import automation_revision

_SLA: TypeAdapter[SLA] = TypeAdapter(SLA)

# What an SLA does about a miss, not what it watches: changing these keeps its windows.
_NOT_WATCHED = {"description", "severity", "enabled", "actions", "actions_on_resolve", "emit_met"}


def sla_id(name: str) -> str:
    """An SLA's id, from its name."""
    return str(uuid5(NAMESPACE, f"sla:{name}"))


def fingerprint(sla: SLA) -> str:
    """A hash of what the SLA watches and when (actions left out)."""
    data = sla.model_dump(mode="json", exclude=_NOT_WATCHED)
    if data.get("warn_before"):
        data["warn_before"] = data["warn_before"]["before"]
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass(frozen=True)
class StoredSLA:
    """An SLA as stored."""

    id: str
    sla: SLA
    fingerprint: str
    created: datetime
    updated: datetime

    def as_json(self) -> dict[str, Any]:
        data = self.sla.model_dump(mode="json")
        return {
            "id": self.id,
            **data,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
        }


def _from_row(row: Any) -> StoredSLA:
    return StoredSLA(
        id=row.id,
        sla=_SLA.validate_python(row.definition),
        fingerprint=row.fingerprint,
        created=row.created,
        updated=row.updated,
    )


class SLAStore:
    """Reads and changes SLAs; every write bumps the definitions' revision."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def all(self) -> list[StoredSLA]:
        """Every SLA, by name."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(slas).order_by(slas.c.name))).all()
        return [_from_row(row) for row in rows]

    async def get(self, ref: str) -> StoredSLA:
        """By name or id; raises SLANotFound."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(slas).where((slas.c.name == ref) | (slas.c.id == ref)))
            ).first()
        if row is None:
            raise SLANotFound(
                f"no SLA is named or has the id {ref!r}; `tripwire sla ls` lists them"
            )
        return _from_row(row)

    async def apply(
        self, wanted: Sequence[SLA], *, prune: bool = False, dry_run: bool = False
    ) -> list[Change]:
        """Create or update by name (with `prune`, delete the ones not given); idempotent."""
        changes: list[Change] = []
        now = clock.now()
        async with self.engine.begin() as conn:
            existing = {row.name: row for row in (await conn.execute(select(slas))).all()}
            for sla in wanted:
                definition, mark = sla.model_dump(mode="json"), fingerprint(sla)
                row = existing.get(sla.name)
                if row is None:
                    changes.append(Change(sla.name, ChangeKind.created))
                    values = {"id": sla_id(sla.name), "name": sla.name, "created": now}
                    if not dry_run:
                        await conn.execute(
                            slas.insert().values(
                                **values,
                                kind=sla.kind,
                                enabled=sla.enabled,
                                definition=definition,
                                fingerprint=mark,
                                updated=now,
                            )
                        )
                    continue
                if row.definition == definition:
                    changes.append(Change(sla.name, ChangeKind.unchanged))
                    continue
                resets = [row.id] if row.fingerprint != mark else []
                changes.append(
                    Change(sla.name, ChangeKind.updated, resets, await _windows(conn, resets))
                )
                if not dry_run:
                    await _drop_windows(conn, resets)
                    await conn.execute(
                        update(slas)
                        .where(slas.c.id == row.id)
                        .values(
                            kind=sla.kind,
                            enabled=sla.enabled,
                            definition=definition,
                            fingerprint=mark,
                            updated=now,
                        )
                    )
            if prune:
                names = {s.name for s in wanted}
                for name, row in sorted(existing.items()):
                    if name not in names:
                        gone = [row.id]
                        changes.append(
                            Change(name, ChangeKind.deleted, gone, await _windows(conn, gone))
                        )
                        if not dry_run:
                            await _drop_windows(conn, gone)
                            await conn.execute(delete(slas).where(slas.c.id == row.id))
            if dry_run:
                await conn.rollback()
            elif any(c.kind is not ChangeKind.unchanged for c in changes):
                await _bump(conn)
        return changes

    async def delete(self, ref: str) -> StoredSLA:
        """Delete an SLA and its windows; returns what it was."""
        stored = await self.get(ref)
        async with self.engine.begin() as conn:
            await _drop_windows(conn, [stored.id])
            await conn.execute(delete(slas).where(slas.c.id == stored.id))
            await _bump(conn)
        return stored

    async def states(self) -> list[tuple[str, int, int]]:
        """(name, keys, missed keys) of every SLA, for the metrics."""
        missed = func.count(sla_windows.c.missed)  # counts the rows where it is set
        query = (
            select(slas.c.name, func.count(sla_windows.c.key), missed)
            .select_from(slas.outerjoin(sla_windows, sla_windows.c.sla_id == slas.c.id))
            .group_by(slas.c.name)
        )
        async with self.engine.connect() as conn:
            return [(r[0], int(r[1]), int(r[2])) for r in (await conn.execute(query)).all()]

    async def windows(self, sla: str) -> list[Any]:
        """The windows of one SLA (by id), by key."""
        async with self.engine.connect() as conn:
            query = select(sla_windows).where(sla_windows.c.sla_id == sla)
            return list((await conn.execute(query.order_by(sla_windows.c.key))).all())


async def _windows(conn: AsyncConnection, ids: list[str]) -> int:
    if not ids:
        return 0
    query = select(func.count()).where(sla_windows.c.sla_id.in_(ids))
    return int(await conn.scalar(query) or 0)


async def _drop_windows(conn: AsyncConnection, ids: list[str]) -> None:
    if ids:
        await conn.execute(delete(sla_windows).where(sla_windows.c.sla_id.in_(ids)))


async def _bump(conn: AsyncConnection) -> None:
    await conn.execute(
        update(automation_revision).values(revision=automation_revision.c.revision + 1)
    )
