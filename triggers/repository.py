"""Automations in the database: apply by name, CRUD, pause and resume.

Every change bumps `automation_revision` in the same transaction, so running workers see
it on their next poll and reload. Changing or removing a trigger deletes its in-flight
state (windows, counts, child firings); changing only actions or the description keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events import clock
from triggers.automation import Automation
from triggers.errors import TriggersError
from triggers.identity import automation_id, stamped, trigger_fingerprints
from triggers.tables import (
    automation_revision,
    automations,
    child_firings,
    decisions,
    trigger_buckets,
)


class AutomationNotFound(TriggersError, LookupError):
    """No automation has that name or id."""


class AutomationExists(TriggersError, ValueError):
    """An automation of that name exists already."""


class ChangeKind(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    deleted = "deleted"


@dataclass(frozen=True)
class Change:
    """What `apply` did (or, in a dry run, would do) to one automation."""

    name: str
    kind: ChangeKind
    reset_triggers: list[str] = field(default_factory=list)  # trigger ids whose state resets
    open_windows: int = 0  # in-flight windows those resets drop


@dataclass(frozen=True)
class StoredAutomation:
    """An automation as stored, with its timestamps."""

    automation: Automation
    created: datetime
    updated: datetime

    @property
    def id(self) -> UUID:
        assert self.automation.id is not None
        return self.automation.id

    def as_json(self) -> dict[str, Any]:
        """Prefect's JSON shape plus created/updated."""
        data = self.automation.model_dump(mode="json", by_alias=True)
        data["created"] = self.created.isoformat()
        data["updated"] = self.updated.isoformat()
        return data


def _definition(automation: Automation) -> dict[str, Any]:
    return automation.model_dump(mode="json")


def _from_row(row: Any) -> StoredAutomation:
    return StoredAutomation(Automation.model_validate(row.definition), row.created, row.updated)


def _looks_like_id(ref: str) -> bool:
    try:
        UUID(ref)
    except ValueError:
        return False
    return True


class AutomationStore:
    """Reads and changes automations; all writes bump the revision."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def revision(self) -> int:
        """Changes so far; workers reload when it moves."""
        async with self.engine.connect() as conn:
            value = await conn.scalar(select(automation_revision.c.revision))
        return int(value or 0)

    async def all(self) -> list[StoredAutomation]:
        """Every automation, by name."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(automations).order_by(automations.c.name))).all()
        return [_from_row(row) for row in rows]

    async def get(self, ref: str) -> StoredAutomation:
        """By id or name; raises AutomationNotFound."""
        async with self.engine.connect() as conn:
            row = await self._row(conn, ref)
        return _from_row(row)

    async def _row(self, conn: AsyncConnection, ref: str) -> Any:
        column = automations.c.id if _looks_like_id(ref) else automations.c.name
        row = (await conn.execute(select(automations).where(column == ref))).first()
        if row is None and column is automations.c.id:
            row = (await conn.execute(select(automations).where(automations.c.name == ref))).first()
        if row is None:
            raise AutomationNotFound(
                f"no automation is named or has the id {ref!r}; `tripwire automations ls` "
                "lists them"
            )
        return row

    async def apply(
        self, wanted: Sequence[Automation], *, prune: bool = False, dry_run: bool = False
    ) -> list[Change]:
        """Create or update by name (and with `prune`, delete the ones not given).

        Idempotent: applying the same definitions again changes nothing.
        """
        changes: list[Change] = []
        async with self.engine.begin() as conn:
            existing = {row.name: row for row in (await conn.execute(select(automations))).all()}
            for automation in wanted:
                row = existing.get(automation.name)
                if row is None:
                    changes.append(Change(automation.name, ChangeKind.created))
                    if not dry_run:
                        await self._insert(conn, automation)
                    continue
                change = await self._replace(conn, row, automation, dry_run=dry_run)
                changes.append(change)
            if prune:
                names = {a.name for a in wanted}
                for name, row in sorted(existing.items()):
                    if name not in names:
                        old = _from_row(row).automation
                        resets = list(trigger_fingerprints(old))
                        changes.append(
                            Change(
                                name,
                                ChangeKind.deleted,
                                resets,
                                await self._open_windows(conn, resets),
                            )
                        )
                        if not dry_run:
                            await self._delete(conn, row.id)
            if dry_run:
                await conn.rollback()
            elif any(c.kind is not ChangeKind.unchanged for c in changes):
                await self._bump(conn)
        return changes

    async def create(self, automation: Automation) -> StoredAutomation:
        """A new automation; raises AutomationExists when the name is taken."""
        async with self.engine.begin() as conn:
            taken = await conn.scalar(
                select(automations.c.id).where(automations.c.name == automation.name)
            )
            if taken is not None:
                raise AutomationExists(
                    f"an automation named {automation.name!r} exists already; update it "
                    "(PUT /api/automations/{id} or tripwire apply) or pick another name"
                )
            await self._insert(conn, automation)
            await self._bump(conn)
            return _from_row(await self._row(conn, automation.name))

    async def replace(self, ref: str, automation: Automation) -> StoredAutomation:
        """Replace an automation's definition (its id stays)."""
        async with self.engine.begin() as conn:
            row = await self._row(conn, ref)
            if automation.name != row.name:
                taken = await conn.scalar(
                    select(automations.c.id).where(automations.c.name == automation.name)
                )
                if taken is not None:
                    raise AutomationExists(
                        f"an automation named {automation.name!r} exists already"
                    )
            automation = automation.model_copy(update={"id": UUID(row.id)})
            change = await self._replace(conn, row, automation, dry_run=False)
            if change.kind is not ChangeKind.unchanged:
                await self._bump(conn)
            return _from_row(await self._row(conn, row.id))

    async def set_enabled(self, ref: str, enabled: bool) -> StoredAutomation:
        """Pause (False) or resume (True); state is kept either way."""
        async with self.engine.begin() as conn:
            row = await self._row(conn, ref)
            if row.enabled != enabled:
                definition = dict(row.definition, enabled=enabled)
                await conn.execute(
                    update(automations)
                    .where(automations.c.id == row.id)
                    .values(enabled=enabled, definition=definition, updated=clock.now())
                )
                await self._bump(conn)
            return _from_row(await self._row(conn, row.id))

    async def switch(self, ref: str, enabled: bool) -> tuple[str, str]:
        """`set_enabled` for the pause/resume-automation actions: returns id and name."""
        stored = await self.set_enabled(ref, enabled)
        return str(stored.id), stored.automation.name

    async def delete(self, ref: str) -> StoredAutomation:
        """Delete an automation with its trigger state and decisions; returns what it was."""
        async with self.engine.begin() as conn:
            row = await self._row(conn, ref)
            await self._delete(conn, row.id)
            await self._bump(conn)
            return _from_row(row)

    async def _insert(self, conn: AsyncConnection, automation: Automation) -> None:
        if automation.id is None:
            derived = automation_id(automation.name)
            # Taken when an automation was renamed and its old name is used again.
            taken = await conn.scalar(
                select(automations.c.id).where(automations.c.id == str(derived))
            )
            automation = automation.model_copy(update={"id": uuid4() if taken else derived})
        automation = stamped(automation)
        now = clock.now()
        await conn.execute(
            automations.insert().values(
                id=str(automation.id),
                name=automation.name,
                enabled=automation.enabled,
                definition=_definition(automation),
                created=now,
                updated=now,
            )
        )

    async def _replace(
        self, conn: AsyncConnection, row: Any, automation: Automation, *, dry_run: bool
    ) -> Change:
        old = _from_row(row).automation
        new = stamped(automation.model_copy(update={"id": old.id}))
        if _definition(new) == _definition(old):
            return Change(new.name, ChangeKind.unchanged)
        before, after = trigger_fingerprints(old), trigger_fingerprints(new)
        resets = [tid for tid, mark in before.items() if after.get(tid) != mark]
        windows = await self._open_windows(conn, resets)
        if not dry_run:
            await self._clear_state(conn, resets)
            await conn.execute(
                update(automations)
                .where(automations.c.id == row.id)
                .values(
                    name=new.name,
                    enabled=new.enabled,
                    definition=_definition(new),
                    updated=clock.now(),
                )
            )
        return Change(new.name, ChangeKind.updated, resets, windows)

    async def _open_windows(self, conn: AsyncConnection, trigger_ids: list[str]) -> int:
        if not trigger_ids:
            return 0
        count = await conn.scalar(
            select(func.count()).where(trigger_buckets.c.trigger_id.in_(trigger_ids))
        )
        firings = await conn.scalar(
            select(func.count()).where(child_firings.c.parent_id.in_(trigger_ids))
        )
        return int(count or 0) + int(firings or 0)

    async def _clear_state(self, conn: AsyncConnection, trigger_ids: list[str]) -> None:
        if trigger_ids:
            await conn.execute(
                delete(trigger_buckets).where(trigger_buckets.c.trigger_id.in_(trigger_ids))
            )
            await conn.execute(
                delete(child_firings).where(child_firings.c.parent_id.in_(trigger_ids))
            )

    async def _delete(self, conn: AsyncConnection, automation_id: str) -> None:
        for table in (trigger_buckets, child_firings, decisions):
            await conn.execute(delete(table).where(table.c.automation_id == automation_id))
        await conn.execute(delete(automations).where(automations.c.id == automation_id))

    async def _bump(self, conn: AsyncConnection) -> None:
        await conn.execute(
            update(automation_revision).values(revision=automation_revision.c.revision + 1)
        )
