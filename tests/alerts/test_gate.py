"""The silence gate reads what mutes once for every action attempt that waits on it."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from alerts.gate import SilenceGate
from triggers.repository import AutomationStore
from tripwire.database import create_engine, migrate


async def test_concurrent_attempts_share_one_reading_of_what_mutes(database_url: str) -> None:
    db = create_engine(database_url)
    await migrate(db)
    checkouts = 0

    def checked_out(*_: Any) -> None:
        nonlocal checkouts
        checkouts += 1

    event.listen(db.sync_engine.pool, "checkout", checked_out)
    gate = SilenceGate(db, AutomationStore(db))
    try:
        readings = await asyncio.gather(*(gate.muting() for _ in range(200)))
        assert checkouts == 1, f"{checkouts} connections for one reading"
        assert all(r is readings[0] for r in readings)
        gate.forget()
        await asyncio.gather(*(gate.muting() for _ in range(50)))
        assert checkouts == 2, "a forgotten reading is read again, once"
    finally:
        await db.dispose()
