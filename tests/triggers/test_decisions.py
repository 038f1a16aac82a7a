"""Decision traces stay bounded per automation, newest kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events import clock
from tests.triggers.conftest import Harness
from triggers.automation import Automation
from triggers.budget import Sampling
from triggers.decisions import read_decisions, trim_decisions
from triggers.repository import AutomationStore
from triggers.tables import decisions


async def test_trim_keeps_the_newest_per_automation(harness: Harness) -> None:
    store = AutomationStore(harness.db)
    for name in ("a", "b"):
        await store.apply([Automation.model_validate({"name": name, "trigger": {"type": "event"}})])
    a, b = [str((await store.get(n)).id) for n in ("a", "b")]
    rows = [
        {
            "automation_id": owner,
            "trigger_id": "t",
            "decided": clock.now(),
            "outcome": "counted",
            "reason": f"{owner}-{i}",
        }
        for owner, count in ((a, 30), (b, 5))
        for i in range(count)
    ]
    async with harness.db.begin() as conn:
        await conn.execute(decisions.insert(), rows)
    assert await trim_decisions(harness.db, keep=10) == 20
    kept = await read_decisions(harness.db, a, last=100)
    assert [d.reason for d in kept] == [f"{a}-{i}" for i in range(20, 30)]
    assert len(await read_decisions(harness.db, b, last=100)) == 5


def test_sampling_allows_so_many_per_automation_per_second_of_the_clock() -> None:
    start = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    with clock.frozen_clock(start) as frozen:
        sampling = Sampling(2)
        for _ in range(2):  # two batches within one second share the budget
            sampling.start()
            assert sampling.allows("a")
            sampling.spend("a")
        sampling.start()
        assert not sampling.allows("a")
        assert sampling.allows("b")  # per automation
        frozen.advance(timedelta(seconds=1))
        sampling.start()
        assert sampling.allows("a")
    unlimited = Sampling(None)
    for _ in range(100):
        unlimited.spend("a")
    assert unlimited.allows("a")
