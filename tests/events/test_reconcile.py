"""The reconciler with a kind of its own, on SQLite and PostgreSQL: the walk every stored
kind shares (create, update, unchanged, prune, dry run), the state a change costs, and
what it refuses before writing anything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.errors import ApplyConflict, DuplicateName
from events.reconcile import Change, ChangeKind, Kind, applying, reconcile
from events.tables import Labels
from events.timestamps import UTCDateTime
from tripwire.database import create_engine

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("title", String(50), primary_key=True),
    Column("definition", Labels, nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
)
revision = Table("revision", metadata, Column("n", Integer, nullable=False))


class Note(BaseModel):
    title: str
    text: str = ""
    watched: str = ""  # changing it resets the note's state


class NoteKind(Kind[Note]):
    """A kind with state (one window per note while `watched` stays) and a revision."""

    table = notes
    section = "notes"
    key = "title"
    raced = "a note was created meanwhile"

    def __init__(self) -> None:
        self.windows: dict[str, int] = {}
        self.dropped: list[str] = []

    def same(self, row: Any, item: Note) -> bool:
        return Note.model_validate(row.definition) == item

    def resets(self, row: Any, item: Note) -> list[str]:
        return [row.title] if row.definition["watched"] != item.watched else []

    def state(self, row: Any) -> list[str]:
        return [row.title]

    async def open_windows(self, conn: AsyncConnection, ids: list[str]) -> int:
        return sum(self.windows.get(i, 0) for i in ids)

    async def drop(self, conn: AsyncConnection, ids: list[str]) -> None:
        self.dropped += ids

    async def bump(self, conn: AsyncConnection) -> None:
        await conn.execute(revision.update().values(n=revision.c.n + 1))


class TwiceKind(NoteKind):
    """Inserts each note twice, as if another apply stored it meanwhile."""

    async def insert(self, conn: AsyncConnection, item: Note, now: datetime) -> None:
        await super().insert(conn, item, now)
        await super().insert(conn, item, now)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(revision.insert().values(n=0))
    yield engine
    await engine.dispose()


async def apply(
    db: AsyncEngine, kind: Kind[Note], *wanted: Note, prune: bool = False, dry_run: bool = False
) -> list[tuple[str, str, list[str], int]]:
    async with applying(db, dry_run=dry_run) as conn:
        changes = await reconcile(conn, kind, wanted, prune=prune, dry_run=dry_run)
    return [(c.name, c.kind.value, c.reset_triggers, c.open_windows) for c in changes]


async def stored(db: AsyncEngine) -> dict[str, Note]:
    async with db.connect() as conn:
        rows = (await conn.execute(select(notes))).all()
    return {row.title: Note.model_validate(row.definition) for row in rows}


async def revisions(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(revision.c.n)) or 0)


async def test_the_walk_creates_updates_keeps_and_prunes_by_key(db: AsyncEngine) -> None:
    kind = NoteKind()
    a, b = Note(title="a", watched="x"), Note(title="b")
    assert await apply(db, kind, a, b) == [("a", "created", [], 0), ("b", "created", [], 0)]
    assert await apply(db, kind, a, b) == [("a", "unchanged", [], 0), ("b", "unchanged", [], 0)]
    assert await revisions(db) == 1  # the same definitions again changed nothing

    kind.windows = {"a": 3, "b": 2}
    reworded = a.model_copy(update={"text": "only what it does"})
    assert await apply(db, kind, reworded) == [("a", "updated", [], 0)]  # state kept
    rewatched = reworded.model_copy(update={"watched": "y"})
    assert await apply(db, kind, rewatched, prune=True) == [
        ("a", "updated", ["a"], 3),
        ("b", "deleted", ["b"], 2),
    ]
    assert kind.dropped == ["a"]  # b's row went with its state: `delete` owns that
    assert await stored(db) == {"a": rewatched}
    assert await revisions(db) == 3  # one per apply that changed something


async def test_a_dry_run_reports_the_same_plan_and_writes_nothing(db: AsyncEngine) -> None:
    kind = NoteKind()
    await apply(db, kind, Note(title="a"), Note(title="b"))
    kind.windows = {"b": 1}
    plan = await apply(db, kind, Note(title="a", watched="z"), Note(title="c"), prune=True,
                       dry_run=True)  # fmt: skip
    assert plan == [("a", "updated", ["a"], 0), ("c", "created", [], 0), ("b", "deleted", ["b"], 1)]
    assert await stored(db) == {"a": Note(title="a"), "b": Note(title="b")}
    assert kind.dropped == []
    assert await revisions(db) == 1


async def test_a_name_twice_is_refused_naming_its_second_place(db: AsyncEngine) -> None:
    with pytest.raises(DuplicateName) as refused:
        await apply(db, NoteKind(), Note(title="a"), Note(title="b"), Note(title="a", text="2"))
    assert refused.value.field == "notes[2].title"
    assert refused.value.message == "'a' is also notes[0]; titles must be unique"
    assert await stored(db) == {}


async def test_a_row_stored_meanwhile_is_a_conflict_and_nothing_is_kept(db: AsyncEngine) -> None:
    async def both() -> None:
        async with applying(db) as conn:  # two kinds in one transaction, as `apply` does
            for kind in (NoteKind(), TwiceKind()):
                await reconcile(conn, kind, [Note(title=type(kind).__name__)])

    with pytest.raises(ApplyConflict, match="a note was created meanwhile"):
        await both()
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(notes)) == 0


def test_a_change_answers_in_the_one_shape() -> None:
    change = Change("nightly", ChangeKind.updated, ["t1"], 2)
    assert change.as_json() == {
        "name": "nightly",
        "kind": "updated",
        "reset_triggers": ["t1"],
        "open_windows": 2,
    }
