"""Declarative definitions in the database: one walk that makes a table hold what the
files define, whatever the kind (automations, SLAs, webhooks, connections).

Usage::

    async with applying(engine, dry_run=False) as conn:   # one transaction for all kinds
        changes = await reconcile(conn, WEBHOOKS, wanted, prune=True)

`reconcile` creates what is new, updates what changed, reports the rest unchanged and,
with `prune`, deletes what is not wanted; the same definitions again change nothing. A
dry run reports the same changes and writes nothing (and `applying` rolls back anyway).

Each kind is a `Kind` that says only what differs: its table and key column, how to
write and compare a row, which evaluation state an update resets and a delete drops, and
the revision bump that tells workers to reload. Only `same` must be written; the others
default to a `definition` column holding the model's JSON and no state.

A kind whose definitions come in groups (a Prefect deployment's SLAs) says which rows a
group owns (`scope`) and that a group replaces them (`replaces`): applying a group
creates, updates and deletes its own rows and leaves every other group's alone.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events import clock
from events.errors import ApplyConflict, DuplicateName

log = logging.getLogger("tripwire.reconcile")

T = TypeVar("T", bound=BaseModel)
Row = Any  # a stored row, as SQLAlchemy returns it


class ChangeKind(StrEnum):
    """What `apply` did (or, in a dry run, would do) to one definition."""

    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    deleted = "deleted"


@dataclass(frozen=True)
class Change:
    """What `apply` did (or would do) to one definition, and the evaluation state that
    costs: the ids whose state it resets (an automation's triggers, an SLA) and how many
    open windows (an SLA's keys) go with them."""

    name: str
    kind: ChangeKind
    reset_triggers: list[str] = field(default_factory=list)
    open_windows: int = 0

    def as_json(self) -> dict[str, Any]:
        """The shape every apply endpoint answers with, one per definition."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "reset_triggers": self.reset_triggers,
            "open_windows": self.open_windows,
        }


class Kind(ABC, Generic[T]):
    """One kind of definition, as `reconcile` walks it. A subclass names its table and
    says how a stored row compares with a wanted definition; the rest has defaults."""

    table: ClassVar[Table]
    section: ClassVar[str]  # its list in a file and a request body: "webhooks"
    key: ClassVar[str] = "name"  # the column (and field) apply matches by
    raced: ClassVar[str]  # the 409 when another apply stored one meanwhile
    replaces: ClassVar[bool] = False  # rows in scope that are not wanted go, without prune

    def items(self, given: Sequence[Any]) -> Sequence[T]:
        """The definitions a section's items stand for (each is one by default)."""
        return given

    def scope(self, row: Row, given: Sequence[Any], prune: bool) -> bool:
        """Whether `apply` of `given` compares `row` with what it wants and (pruning or
        replacing) deletes it when not wanted. Every row by default."""
        return True

    def name(self, item: T) -> str:
        """What apply matches `item` by."""
        return str(getattr(item, self.key))

    def check(self, wanted: Sequence[T], stored: Mapping[str, Row]) -> None:
        """Raise ApplyConflict when `wanted` cannot go over what is stored."""

    def values(self, item: T) -> dict[str, Any]:
        """The columns an insert and an update write (besides the key and times)."""
        return {"definition": item.model_dump(mode="json")}

    async def insert(self, conn: AsyncConnection, item: T, now: datetime) -> None:
        """Store a new definition."""
        values = {self.key: self.name(item), **self.values(item)}
        await conn.execute(self.table.insert().values(**values, created=now, updated=now))

    @abstractmethod
    def same(self, row: Row, item: T) -> bool:
        """The stored row holds `item` already: apply leaves it alone."""

    def resets(self, row: Row, item: T) -> list[str]:
        """The ids whose evaluation state updating `row` to `item` resets."""
        return []

    async def update(self, conn: AsyncConnection, row: Row, item: T, now: datetime) -> None:
        """Store `item` over the row of the same name."""
        column = self.table.c[self.key]
        await conn.execute(
            update(self.table)
            .where(column == getattr(row, self.key))
            .values(**self.values(item), updated=now)
        )

    def state(self, row: Row) -> list[str]:
        """The ids whose evaluation state deleting `row` drops."""
        return []

    async def open_windows(self, conn: AsyncConnection, ids: list[str]) -> int:
        """How many open windows the state of `ids` holds."""
        return 0

    async def drop(self, conn: AsyncConnection, ids: list[str]) -> None:
        """Drop the evaluation state of `ids` (an update that resets it)."""

    async def delete(self, conn: AsyncConnection, row: Row) -> None:
        """Delete the row and whatever is kept with it."""
        column = self.table.c[self.key]
        await conn.execute(delete(self.table).where(column == getattr(row, self.key)))

    async def bump(self, conn: AsyncConnection) -> None:
        """Tell running workers to reload (after anything changed)."""


@asynccontextmanager
async def applying(engine: AsyncEngine, *, dry_run: bool = False) -> AsyncIterator[AsyncConnection]:
    """One transaction for `reconcile` calls: every kind is applied, or none; a dry run
    is rolled back."""
    async with engine.begin() as conn:
        yield conn
        if dry_run:
            await conn.rollback()


async def reconcile(
    conn: AsyncConnection,
    kind: Kind[T],
    given: Sequence[Any],
    *,
    prune: bool = False,
    dry_run: bool = False,
) -> list[Change]:
    """Make `kind`'s table hold what `given` stands for (`Kind.items`), matched by name:
    create, update, leave alone and (with `prune`, or within the scope of a kind that
    `replaces`) delete the others, one Change each, in that order. Raises
    DuplicateName or ApplyConflict before writing anything, or ApplyConflict when
    another apply stored one meanwhile."""
    _unique(kind, given)
    wanted = kind.items(given)
    rows = (await conn.execute(select(kind.table))).all()
    kind.check(wanted, {getattr(r, kind.key): r for r in rows})
    stored = {getattr(r, kind.key): r for r in rows if kind.scope(r, given, prune)}
    now = clock.now()
    changes: list[Change] = []
    try:
        for item in wanted:
            name, row = kind.name(item), stored.get(kind.name(item))
            if row is None:
                changes.append(Change(name, ChangeKind.created))
                if not dry_run:
                    await kind.insert(conn, item, now)
            elif kind.same(row, item):
                changes.append(Change(name, ChangeKind.unchanged))
            else:
                resets = kind.resets(row, item)
                windows = await kind.open_windows(conn, resets)
                changes.append(Change(name, ChangeKind.updated, resets, windows))
                if not dry_run:
                    await kind.drop(conn, resets)
                    await kind.update(conn, row, item, now)
        if prune or kind.replaces:
            names = {kind.name(item) for item in wanted}
            for name, row in sorted(stored.items()):
                if name not in names:
                    gone = kind.state(row)
                    windows = await kind.open_windows(conn, gone)
                    changes.append(Change(name, ChangeKind.deleted, gone, windows))
                    if not dry_run:
                        await kind.delete(conn, row)
        if not dry_run and any(c.kind is not ChangeKind.unchanged for c in changes):
            await kind.bump(conn)
    except IntegrityError as exc:
        log.info("apply of %s raced another: %s", kind.section, exc.orig)
        raise ApplyConflict(kind.raced) from None
    return changes


def _unique(kind: Kind[T], wanted: Sequence[T]) -> None:
    """DuplicateName at the second place a name stands (`webhooks[3].slug`)."""
    seen: dict[str, int] = {}
    for index, item in enumerate(wanted):
        name = kind.name(item)
        if name in seen:
            raise DuplicateName(
                f"{name!r} is also {kind.section}[{seen[name]}]; {kind.key}s must be unique",
                field=f"{kind.section}[{index}].{kind.key}",
            )
        seen[name] = index
