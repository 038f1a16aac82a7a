"""The database engine (SQLite WAL by default, PostgreSQL in production) and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"
CHECKPOINT_EVERY = 0.25  # seconds between the checkpoint thread's passes
FALLBACK_CHECKPOINT_PAGES = 50_000  # a commit checkpoints itself past this WAL size
CACHE_SIZE = "prepared_statement_cache_size"
PREPARED_STATEMENTS = 1_000


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def normalize_url(url: str) -> str:
    """Pick the async driver for plain postgresql:// and sqlite:// URLs."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


class SQLiteEngine(AsyncEngine):
    """An AsyncEngine whose transactions (`begin`) take turns within this process.

    SQLite lets one connection write at a time. A transaction that finds another one
    writing would sleep in SQLite's busy handler, in steps of 1, 2, 5, 10 ... 100 ms, even
    when the other commits a moment later: the worker's batches, the action ledger and the
    timers all write, and those sleeps were a fifth of the worker's database time. Here
    they queue on an asyncio lock instead and start the moment it is free. A task that
    already holds the lock may begin again (reading beside its own transaction).

    Between processes (`tripwire up` runs its roles in several), each transaction starts
    with `BEGIN IMMEDIATE`: it holds the write lock from its first statement, so what it
    reads cannot change before it writes. The driver would begin only at the first
    INSERT, UPDATE or DELETE, leaving the reads before it outside the transaction; one
    process's asyncio lock covered that, another process's writes would not be.
    """

    __slots__ = ("_loop", "_owner", "_turns")

    def __init__(self, sync_engine: Engine) -> None:
        super().__init__(sync_engine)
        self._turns = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner: asyncio.Task[Any] | None = None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a lock serves one event loop (tests run several)
            self._turns, self._loop = asyncio.Lock(), loop
        task = asyncio.current_task()
        if task is not None and task is self._owner:
            async with super().begin() as conn:
                yield conn
            return
        async with self._turns:
            self._owner = task
            try:
                async with super().begin() as conn:
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                    yield conn
            finally:
                self._owner = None


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and its parent folder created."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = SQLiteEngine(
            create_async_engine(
                url,
                json_serializer=_json,
                json_deserializer=orjson.loads,
                connect_args={"timeout": 30, "cached_statements": 512},
                # Every use ends its transaction (commit or rollback) before the
                # connection goes back; a second rollback there is one more trip to
                # aiosqlite's thread per transaction.
                pool_reset_on_return=None,
                **options,
            ).sync_engine
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Labels and names are case-sensitive, as in PostgreSQL and in memory.
            cursor.execute("PRAGMA case_sensitive_like=ON")
            # The WAL is checkpointed in a thread of its own (`checkpoint_forever`); a
            # commit checkpoints only should that fall behind by ~200 MB. Keep 64 MB of
            # pages cached: fewer page rewrites under a steady insert load.
            cursor.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_CHECKPOINT_PAGES}")
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.close()

        return engine
    parsed = make_url(url)
    if parsed.drivername == "postgresql+asyncpg" and CACHE_SIZE not in parsed.query:
        # The hot path's statements come in a few sizes each (events/bulk.py), a few
        # hundred texts in all: more than the adapter's default cache of 100 prepared
        # statements per connection keeps, and a statement prepared again costs about
        # as much as running it.
        parsed = parsed.update_query_dict({CACHE_SIZE: str(PREPARED_STATEMENTS)})
    return create_async_engine(
        parsed, json_serializer=_json, json_deserializer=orjson.loads, pool_pre_ping=True, **options
    )


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and in-memory databases)."""
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def checkpoint(path: Path) -> tuple[int, int, int]:
    """Copy what the WAL holds into the database file without waiting for readers or
    writers (PASSIVE); returns SQLite's (busy, frames in the WAL, frames copied)."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
        busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(busy), int(frames), int(copied)


async def checkpoint_forever(path: Path, every: float = CHECKPOINT_EVERY) -> None:
    """Checkpoint the WAL in a thread of its own, every `every` seconds. Left to SQLite,
    the commit that fills the WAL checkpoints it, and that batch (and every event behind
    it) waits for the copy and its fsync: 30-130 ms, once a second under load. Here
    writers never wait for it; the next writer after a complete pass starts the WAL
    over."""
    log = logging.getLogger("tripwire.database")
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(checkpoint, path)
        except sqlite3.Error as exc:
            log.warning("checkpointing %s failed (%s); the writer checkpoints meanwhile", path, exc)


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent; safe on every start)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)
