"""PostgreSQL connections dropped (pg_terminate_backend) while the worker is inside its
batches: the failed batch is redelivered and retried, and nothing is lost or doubled
(see tests/faults/workload.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.faults.conftest import Rig
from tests.faults.workload import ITEM, PER_KEY
from tests.support import eventually

log = logging.getLogger("tests.faults")

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(150)]

KEYS = 60
FAILED_BATCH = "handling a batch of"  # the store consumer's log line for a batch it nak'ed


async def test_database_connections_dropped_during_batches(rig: Rig) -> None:
    api, worker = rig.api(), rig.worker()
    await asyncio.gather(api.wait_healthy(), worker.wait_healthy())
    load = rig.load(api, keys_per_block=5, pause=0.0)  # a backlog: batches back to back
    load.start(limit=KEYS)

    # Drop every connection of the test database whenever one is inside a statement or a
    # transaction, a few times over the load, until a batch of the worker failed on it.
    terminated = 0

    async def batch_failed() -> bool:
        return FAILED_BATCH in worker.log_text()  # the worker logs it as it naks the batch

    async with asyncio.timeout(60):
        while await rig.probe.count(ITEM) < PER_KEY * KEYS:
            if terminated >= 3 and await batch_failed():
                break
            if await rig.terminate_backends(only_busy=True):
                terminated += 1
                stored = await rig.probe.count(ITEM)
                log.info("dropped the connections (%d times), %d events stored", terminated, stored)
                await asyncio.sleep(0.2)  # spread the drops over the load
            await asyncio.sleep(0.01)
    await eventually(batch_failed, 10, f"a failed batch in the worker's log ({terminated} drops)")
    await load.wait_keys(KEYS)
    await load.stop()

    await rig.probe.wait_settled(len(load.accepted), KEYS, rig.receiver, timeout=90)
    await rig.probe.assert_exactly_once(load.accepted, load.keys, rig.receiver)
    assert worker.alive
