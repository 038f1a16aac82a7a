"""SLAs in the database: apply by name, read, delete; and what a Prefect deployment owns
(its SLAs, and the automations of its triggers), applied by deployment.

A change bumps `automation_revision` (the definitions' revision) in the same transaction,
so running workers reload SLAs as they reload automations. Changing what an SLA watches
(its fingerprint) drops its windows; changing only actions, description or severity
keeps them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid5

import orjson
from pydantic import TypeAdapter
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.errors import ApplyConflict, DuplicateName
from events.reconcile import Change, Kind, applying, reconcile
from sla.errors import SLANotFound
from sla.model import SLA
from sla.prefect_slas import to_slas
from sla.prefect_triggers import to_automations
from sla.tables import sla_windows, slas
from triggers.automation import Automation
from triggers.identity import NAMESPACE
from triggers.repository import AutomationKind, bump_revision

_SLA: TypeAdapter[SLA] = TypeAdapter(SLA)

# What an SLA does about a miss, not what it watches: changing these keeps its windows.
_NOT_WATCHED = {
    "description",
    "severity",
    "enabled",
    "labels",
    "prefect",
    "actions",
    "actions_on_resolve",
    "emit_met",
}


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


def owner(row: Any) -> str | None:
    """The Prefect deployment a stored SLA or automation belongs to, or None (one of its
    own)."""
    origin = row.definition.get("prefect")
    return str(origin["deployment"]) if origin else None


def owned(row: Any, given: Sequence[Any], prune: bool, listed: str) -> bool:
    """Whether applying the deployments `given` may replace `row`: it belongs to one that
    gives its `listed` list (`sla`, `triggers`), or, with prune, to one not given. A
    deployment that leaves the list out keeps what it owns."""
    found = owner(row)
    if found is None:
        return False
    replaced = {d.name for d in given if getattr(d, listed) is not None}
    return found in replaced or (prune and found not in {d.name for d in given})


class SLAKind(Kind[SLA]):
    """SLAs for `reconcile`: by name, with the fingerprint of what each watches; a change
    to it, or a delete, drops the SLA's windows. The SLAs of Prefect deployments are
    applied (and pruned) by their deployments (`DeploymentSLAKind`), not here."""

    table = slas
    section = "slas"
    raced = "an SLA was created meanwhile by another apply; apply again"

    def scope(self, row: Any, given: Sequence[Any], prune: bool) -> bool:
        return owner(row) is None

    def check(self, wanted: Sequence[SLA], stored: Mapping[str, Any]) -> None:
        for index, item in enumerate(wanted):
            if item.prefect is not None:
                raise ApplyConflict(
                    "is set from a deployment's Prefect SLAs; declare those under "
                    "deployments: (or in a prefect.yaml)",
                    field=f"{self.section}[{index}].prefect",
                )
            row = stored.get(item.name)
            if row is not None and owner(row) is not None:
                raise ApplyConflict(
                    f"{item.name!r} is an SLA of the Prefect deployment {owner(row)}; "
                    "give this one another name",
                    field=f"{self.section}[{index}].name",
                )

    def values(self, item: SLA) -> dict[str, Any]:
        return {
            "kind": item.kind,
            "enabled": item.enabled,
            "definition": item.model_dump(mode="json"),
            "fingerprint": fingerprint(item),
        }

    async def insert(self, conn: AsyncConnection, item: SLA, now: datetime) -> None:
        values = {"id": sla_id(item.name), "name": item.name, **self.values(item)}
        await conn.execute(slas.insert().values(**values, created=now, updated=now))

    def same(self, row: Any, item: SLA) -> bool:
        return bool(row.definition == item.model_dump(mode="json"))

    def resets(self, row: Any, item: SLA) -> list[str]:
        return [row.id] if row.fingerprint != fingerprint(item) else []

    def state(self, row: Any) -> list[str]:
        return [row.id]

    async def open_windows(self, conn: AsyncConnection, ids: list[str]) -> int:
        if not ids:
            return 0
        query = select(func.count()).where(sla_windows.c.sla_id.in_(ids))
        return int(await conn.scalar(query) or 0)

    async def drop(self, conn: AsyncConnection, ids: list[str]) -> None:
        if ids:
            await conn.execute(delete(sla_windows).where(sla_windows.c.sla_id.in_(ids)))

    async def delete(self, conn: AsyncConnection, row: Any) -> None:
        await self.drop(conn, [row.id])
        await conn.execute(delete(slas).where(slas.c.id == row.id))

    async def bump(self, conn: AsyncConnection) -> None:
        await bump_revision(conn)


SLAS = SLAKind()


class DeploymentSLAKind(SLAKind):
    """Prefect deployments' SLAs for `reconcile`: a deployment given with an `sla:` list
    replaces its SLAs (created, updated, deleted, as Prefect applies them) and leaves the
    other deployments' alone; with prune, the SLAs of deployments not given go too."""

    section = "deployments"
    replaces = True

    def items(self, given: Sequence[Any]) -> list[SLA]:
        return [sla for deployment in given for sla in to_slas(deployment)]

    def scope(self, row: Any, given: Sequence[Any], prune: bool) -> bool:
        return owned(row, given, prune, "sla")

    def check(self, wanted: Sequence[SLA], stored: Mapping[str, Any]) -> None:
        for item in wanted:
            row = stored.get(item.name)
            if row is not None and owner(row) is None:
                assert item.prefect is not None
                raise ApplyConflict(
                    f"the SLA {item.name!r} of the Prefect deployment "
                    f"{item.prefect.deployment} is also the name of an SLA under slas:; "
                    "rename one of them"
                )


DEPLOYMENT_SLAS = DeploymentSLAKind()


class DeploymentTriggerKind(AutomationKind):
    """Prefect deployments' triggers for `reconcile`, as the automations they become: a
    deployment given with a `triggers:` list replaces its automations (created, updated,
    deleted, as `prefect deploy` replaces the automations a deployment owns) and leaves
    the other deployments' alone; with prune, those of deployments not given go too."""

    section = "deployments"
    replaces = True

    def items(self, given: Sequence[Any]) -> list[Automation]:
        return [a for d in given for a in to_automations(d.name, d.triggers or [])]

    def scope(self, row: Any, given: Sequence[Any], prune: bool) -> bool:
        return owned(row, given, prune, "triggers")

    def check(self, wanted: Sequence[Automation], stored: Mapping[str, Any]) -> None:
        seen: dict[str, Automation] = {}
        for item in wanted:
            assert item.prefect is not None
            mine = _trigger(item)
            other = seen.setdefault(item.name, item)
            if other is not item:
                raise DuplicateName(
                    f"{mine} and {_trigger(other)} are both the automation {item.name!r}; "
                    "automation names are unique, so give one of the triggers another name"
                )
            row = stored.get(item.name)
            found = owner(row) if row is not None else None
            if row is not None and found is None:
                raise ApplyConflict(
                    f"the automation {item.name!r} of {mine} is also the name of an "
                    "automation of its own (under automations:); rename one of them"
                )
            if found is not None and found != item.prefect.deployment:
                raise ApplyConflict(
                    f"the automation {item.name!r} of {mine} belongs to a trigger of the "
                    f"Prefect deployment {found}; give this trigger another name"
                )


def _trigger(automation: Automation) -> str:
    """Which trigger of which deployment an automation was made from, for messages."""
    assert automation.prefect is not None
    origin = automation.prefect
    return f"trigger {origin.trigger} of the Prefect deployment {origin.deployment}"


DEPLOYMENT_TRIGGERS = DeploymentTriggerKind()


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
        async with applying(self.engine, dry_run=dry_run) as conn:
            return await reconcile(conn, SLAS, wanted, prune=prune, dry_run=dry_run)

    async def delete(self, ref: str) -> StoredSLA:
        """Delete an SLA and its windows; returns what it was."""
        stored = await self.get(ref)
        async with self.engine.begin() as conn:
            await SLAS.delete(conn, stored)
            await SLAS.bump(conn)
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
