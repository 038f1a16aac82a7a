"""Automations in the database: apply by name, CRUD, pause and resume.

Every change bumps `automation_revision` in the same transaction, so running workers see
it on their next poll and reload. Changing or removing a trigger deletes its in-flight
state (windows, counts, child firings, a metric trigger's runs and keys); changing only
actions or the description keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events import clock
from events.errors import ApplyConflict
from events.reconcile import Change, Kind, applying, reconcile
from triggers import metric_store
from triggers.automation import Automation
from triggers.errors import TriggersError
from triggers.identity import automation_id, stamped, trigger_fingerprints
from triggers.tables import (
    automation_revision,
    automations,
    child_firings,
    decisions,
    metric_runs,
    metric_states,
    trigger_buckets,
)


class AutomationNotFound(TriggersError, LookupError):
    """No automation has that name or id."""


class AutomationExists(TriggersError, ValueError):
    """An automation of that name exists already."""


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

    async def page(
        self, *, after: str = "", limit: int = 100, search: str = ""
    ) -> tuple[list[StoredAutomation], int]:
        """Up to `limit` automations by name, after the name `after`, whose name contains
        `search` (any case); and how many there are in all with that search."""
        named = automations.c.name
        found = select(automations).where(named > after).order_by(named).limit(limit)
        counted = select(func.count()).select_from(automations)
        if search:
            contains = func.lower(named).contains(search.lower(), autoescape=True)
            found, counted = found.where(contains), counted.where(contains)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(found)).all()
            total = int(await conn.scalar(counted) or 0)
        return [_from_row(row) for row in rows], total

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
        async with applying(self.engine, dry_run=dry_run) as conn:
            return await reconcile(conn, AUTOMATIONS, wanted, prune=prune, dry_run=dry_run)

    async def create(self, automation: Automation) -> StoredAutomation:
        """A new automation; raises ApplyConflict when its id is another's, AutomationExists
        when the name is taken."""
        async with self.engine.begin() as conn:
            stored = {r.name: r for r in (await conn.execute(select(automations))).all()}
            AUTOMATIONS.check([automation], stored)
            if automation.name in stored:
                raise AutomationExists(
                    f"an automation named {automation.name!r} exists already; update it "
                    "(PUT /api/automations/{id} or tripwire apply) or pick another name"
                )
            await AUTOMATIONS.insert(conn, automation, clock.now())
            await bump_revision(conn)
            return _from_row(await self._row(conn, automation.name))

    async def replace(self, ref: str, automation: Automation) -> StoredAutomation:
        """Replace an automation's definition (its id stays); the state of the triggers
        that changed is reset."""
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
            if not AUTOMATIONS.same(row, automation):
                await AUTOMATIONS.drop(conn, AUTOMATIONS.resets(row, automation))
                await AUTOMATIONS.update(conn, row, automation, clock.now())
                await bump_revision(conn)
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
                await bump_revision(conn)
            return _from_row(await self._row(conn, row.id))

    async def switch(self, ref: str, enabled: bool) -> tuple[str, str]:
        """`set_enabled` for the pause/resume-automation actions: returns id and name."""
        stored = await self.set_enabled(ref, enabled)
        return str(stored.id), stored.automation.name

    async def delete(self, ref: str) -> StoredAutomation:
        """Delete an automation with its trigger state and decisions; returns what it was."""
        async with self.engine.begin() as conn:
            row = await self._row(conn, ref)
            await AUTOMATIONS.delete(conn, row)
            await bump_revision(conn)
            return _from_row(row)


class AutomationKind(Kind[Automation]):
    """Automations for `reconcile`: by name, ids derived from it; an update resets the
    state of the triggers whose fingerprint changed, a delete drops all of it with the
    decisions."""

    table = automations
    section = "automations"
    raced = (
        "an id or name in the definitions was taken by another automation meanwhile; apply again"
    )

    def scope(self, row: Any, given: Sequence[Any], prune: bool) -> bool:
        # A Prefect deployment's triggers are applied (and pruned) by their deployment.
        return _deployment(row) is None

    def check(self, wanted: Sequence[Automation], stored: Mapping[str, Any]) -> None:
        """An automation to be created must not take the id of one of another name, nor
        the name of a Prefect deployment trigger's automation."""
        by_id = {row.id: name for name, row in stored.items()}
        for index, automation in enumerate(wanted):
            where = f"automations[{index}]" if len(wanted) > 1 else ""
            if automation.prefect is not None:
                raise ApplyConflict(
                    "is set by apply for the automations of a Prefect deployment's "
                    "triggers; declare those under the deployment's triggers: (in "
                    "deployments:, or a prefect.yaml)",
                    field=f"{where}.prefect".lstrip("."),
                )
            row = stored.get(automation.name)
            if row is not None and _deployment(row) is not None:
                raise ApplyConflict(
                    f"{automation.name!r} is the automation of a trigger of the Prefect "
                    f"deployment {_deployment(row)}; give this one another name",
                    field=f"{where}.name".lstrip("."),
                )
            if automation.name in stored:
                continue  # updated by name, keeping its stored id
            given = automation.id is not None
            wanted_id = str(automation.id if given else automation_id(automation.name))
            holder = by_id.get(wanted_id)
            if holder is None:
                continue
            field = f"automations[{index}].id" if len(wanted) > 1 else "id"
            name = automation.name
            if given:
                raise ApplyConflict(
                    f"{name!r} has the id {wanted_id}, which belongs to {holder!r}; apply "
                    "updates by name, so keep the name, or drop `id` to get a new one",
                    field=field,
                )
            raise ApplyConflict(
                f"{name!r} would get the id {wanted_id}, which {holder!r} kept when it was "
                f"renamed from {name!r}; give {name!r} an explicit `id`",
                field=field,
            )

    async def insert(self, conn: AsyncConnection, item: Automation, now: datetime) -> None:
        if item.id is None:
            derived = automation_id(item.name)
            # Taken when an automation was renamed and its old name is used again.
            taken = await conn.scalar(
                select(automations.c.id).where(automations.c.id == str(derived))
            )
            item = item.model_copy(update={"id": uuid4() if taken else derived})
        new = stamped(item)
        values = {"id": str(new.id), **self.values(new)}
        await conn.execute(automations.insert().values(**values, created=now, updated=now))

    def values(self, item: Automation) -> dict[str, Any]:
        return {"name": item.name, "enabled": item.enabled, "definition": _definition(item)}

    def same(self, row: Any, item: Automation) -> bool:
        return _definition(_over(row, item)) == _definition(_from_row(row).automation)

    def resets(self, row: Any, item: Automation) -> list[str]:
        before = trigger_fingerprints(_from_row(row).automation)
        after = trigger_fingerprints(_over(row, item))
        return [tid for tid, mark in before.items() if after.get(tid) != mark]

    async def update(
        self, conn: AsyncConnection, row: Any, item: Automation, now: datetime
    ) -> None:
        values = self.values(_over(row, item))
        where = automations.c.id == row.id
        await conn.execute(update(automations).where(where).values(**values, updated=now))

    def state(self, row: Any) -> list[str]:
        return list(trigger_fingerprints(_from_row(row).automation))

    async def open_windows(self, conn: AsyncConnection, ids: list[str]) -> int:
        if not ids:
            return 0
        count = await conn.scalar(select(func.count()).where(trigger_buckets.c.trigger_id.in_(ids)))
        firings = await conn.scalar(select(func.count()).where(child_firings.c.parent_id.in_(ids)))
        keys = await metric_store.count_states(conn, ids)
        return int(count or 0) + int(firings or 0) + keys

    async def drop(self, conn: AsyncConnection, ids: list[str]) -> None:
        if ids:
            await conn.execute(delete(trigger_buckets).where(trigger_buckets.c.trigger_id.in_(ids)))
            await conn.execute(delete(child_firings).where(child_firings.c.parent_id.in_(ids)))
            await metric_store.drop(conn, ids)

    async def delete(self, conn: AsyncConnection, row: Any) -> None:
        for table in (trigger_buckets, child_firings, decisions, metric_runs, metric_states):
            await conn.execute(delete(table).where(table.c.automation_id == row.id))
        await conn.execute(delete(automations).where(automations.c.id == row.id))

    async def bump(self, conn: AsyncConnection) -> None:
        await bump_revision(conn)


AUTOMATIONS = AutomationKind()


def _deployment(row: Any) -> str | None:
    """The Prefect deployment whose trigger a stored automation was made from, or None."""
    origin = row.definition.get("prefect")
    return str(origin["deployment"]) if origin else None


def _over(row: Any, automation: Automation) -> Automation:
    """`automation` as it would be stored over `row`: with the row's id, stamped."""
    return stamped(automation.model_copy(update={"id": UUID(row.id)}))


async def bump_revision(conn: AsyncConnection) -> None:
    """Move the definitions' revision (automations and SLAs): workers reload when it moves."""
    await conn.execute(
        update(automation_revision).values(revision=automation_revision.c.revision + 1)
    )
