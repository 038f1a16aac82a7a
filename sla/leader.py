"""One process runs the timers: the holder of a PostgreSQL session advisory lock.

Standbys try to take the lock on every timer pass, so when the leader dies (its
connection closes and PostgreSQL releases the lock) one of them carries on within a
poll. Deciding a due window is transactional and fenced anyway (window locks, state
checked under them), so a brief overlap of two leaders cannot fire anything twice; the
lock only keeps the standbys idle. SQLite lives on one host with one engine: no lock.
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from triggers.state import lock_key

log = logging.getLogger("tripwire.sla")


class Leadership:
    """Whether this process runs the timers now."""

    def __init__(self, db: AsyncEngine, name: str) -> None:
        self.db = db
        self.key = lock_key(f"leader:{name}")
        self._conn: AsyncConnection | None = None

    @property
    def needs_lock(self) -> bool:
        return self.db.dialect.name == "postgresql"

    @property
    def leading(self) -> bool:
        """As of the last timer pass."""
        return not self.needs_lock or self._conn is not None

    async def held(self) -> bool:
        """True when this process leads; takes the lead when it is free."""
        if not self.needs_lock:
            return True
        try:
            if self._conn is not None:
                await self._conn.execute(text("SELECT 1"))  # still ours while it answers
                await self._conn.commit()
                return True
            conn = await self.db.connect()
            taken = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            await conn.commit()
            if not taken:
                await conn.close()
                return False
            self._conn = conn
            log.info("this process now runs the SLA and proactive-trigger timers")
            return True
        except Exception as exc:
            log.warning("lost the timer lead (%r); trying to take it again", exc)
            await self._drop(invalidate=True)
            return False

    async def release(self) -> None:
        """Give the lead up (on stop), so a standby takes it at once."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                await self._conn.commit()
        await self._drop(invalidate=False)

    async def _drop(self, *, invalidate: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            if invalidate:  # never hand a connection that may hold the lock back to the pool
                await conn.invalidate()
            await conn.close()
