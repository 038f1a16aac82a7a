"""Workers killed with SIGKILL in the middle of batches and actions: restarted, or with a
second worker carrying on. Every accepted event is stored once, every key fires once and
every action runs once after dedupe (see tests/faults/workload.py)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import httpx
import pytest

from tests.faults.conftest import Rig
from tests.faults.processes import Tripwire
from tests.faults.workload import ITEM, PER_KEY, Load, automation, key_id
from tests.support import eventually
from triggers.replay import replay

log = logging.getLogger("tests.faults")

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(150)]

KEYS = 60  # 180 events in batches of 10, 120 actions four at a time
BURST = {"keys_per_block": 5, "pause": 0.0}  # a backlog: the worker is always mid-batch


async def loaded_midway(rig: Rig, api: Tripwire) -> Load:
    """A backlog load started on `api`, once 45 events are stored and 3 webhooks called."""
    load = rig.load(api, **BURST)
    load.start(limit=KEYS)

    async def midway() -> bool:
        return await rig.probe.count(ITEM) >= 45 and len(rig.receiver.requests) >= 3

    await eventually(midway, 30, "45 events stored and 3 webhook calls")
    return load


async def settled_as_one_evaluator_would(rig: Rig, load: Load, survivor: Tripwire) -> None:
    """Everything settles exactly once, with the survivor alive, and the keys that fired
    are those one evaluator fires on the same events."""
    probe, receiver = rig.probe, rig.receiver
    await probe.wait_settled(len(load.accepted), KEYS, receiver, timeout=90)
    await probe.assert_exactly_once(load.accepted, load.keys, receiver)
    assert survivor.alive
    one_worker = await replay(
        [automation(receiver.url("/hook"))], [e.receive() for e in load.events]
    )
    assert Counter(f.labels["prefect.resource.id"] for f in one_worker.firings) == Counter(
        {key_id(k): 1 for k in load.keys}
    )


async def test_a_worker_killed_mid_batch_and_mid_action_and_restarted(rig: Rig) -> None:
    api, worker = rig.api(), rig.worker()
    await asyncio.gather(api.wait_healthy(), worker.wait_healthy())
    load = rig.load(api, **BURST)
    load.start(limit=KEYS)
    probe, receiver = rig.probe, rig.receiver

    # 1. In the middle of the store batches.
    async def some_stored() -> bool:
        return await probe.count(ITEM) >= 30

    await eventually(some_stored, 30, "30 events stored")
    worker.kill()
    stored, in_hand = await probe.count(ITEM), await probe.delivered_unacked()
    log.info(
        "killed the worker with %d of %d events stored, %d delivered and not acked",
        stored,
        PER_KEY * KEYS,
        in_hand,
    )
    assert stored < PER_KEY * KEYS, "killed after the last batch"
    assert in_hand > 0, "killed between batches"
    worker.start()
    await load.wait_keys(KEYS)
    await load.stop()

    # 2. In the middle of the actions (the receiver takes 0.1 s per call, 4 at a time).
    async def some_called() -> bool:
        return len(receiver.by_key()) >= KEYS // 3

    await eventually(some_called, 60, f"{KEYS // 3} webhook calls")
    worker.kill()
    called, running = len(receiver.by_key()), await probe.running_actions()
    log.info(
        "killed the worker again after %d of %d webhook calls, %d actions running",
        called,
        KEYS,
        running,
    )
    assert called < KEYS, "killed after the last action"
    assert running > 0, "killed between actions"
    worker.start()

    await probe.wait_settled(len(load.accepted), KEYS, receiver, timeout=90)
    await probe.assert_exactly_once(load.accepted, load.keys, receiver)
    repeats = sum(n - 1 for n in receiver.by_key().values())
    log.info("settled; the receiver saw %d repeated webhook calls (same key)", repeats)
    assert worker.alive


async def test_two_workers_one_killed_the_other_carries_on(rig: Rig) -> None:
    api, doomed, survivor = rig.api(), rig.worker(), rig.worker()
    await asyncio.gather(api.wait_healthy(), doomed.wait_healthy(), survivor.wait_healthy())
    load = await loaded_midway(rig, api)
    probe, receiver = rig.probe, rig.receiver
    doomed.kill()
    log.info(
        "killed one of two workers with %d events stored, %d webhook calls",
        await probe.count(ITEM),
        len(receiver.by_key()),
    )
    assert await probe.count(ITEM) < PER_KEY * KEYS or len(receiver.by_key()) < KEYS
    await load.wait_keys(KEYS)
    await load.stop()

    await settled_as_one_evaluator_would(rig, load, survivor)


async def stored_here(worker: Tripwire) -> list[int]:
    """The partitions a worker stores, from its health report."""
    async with httpx.AsyncClient(timeout=2) as client:
        report = (await client.get(worker.url + "/api/health")).json()
    return list(report["partitions"]["stored_here"])


async def test_a_worker_killed_while_it_stores_partitions_hands_them_over(rig: Rig) -> None:
    partitions = {"partitions": 4}
    api = rig.api(**partitions)
    doomed, survivor = rig.worker(**partitions), rig.worker(**partitions)
    await asyncio.gather(api.wait_healthy(), doomed.wait_healthy(), survivor.wait_healthy())

    async def split() -> bool:
        return len(await stored_here(doomed)) == 2 and len(await stored_here(survivor)) == 2

    await eventually(split, 30, "the four partitions split two and two")
    load = await loaded_midway(rig, api)
    probe = rig.probe
    owned = await stored_here(doomed)
    in_hand = await probe.delivered_unacked()
    doomed.kill()
    log.info(
        "killed a worker storing partitions %s with %d events stored, %d delivered and not acked",
        owned,
        await probe.count(ITEM),
        in_hand,
    )
    assert await probe.count(ITEM) < PER_KEY * KEYS, "killed after the last batch"

    async def taken_over() -> bool:
        return await stored_here(survivor) == [0, 1, 2, 3]

    await eventually(taken_over, 30, "the survivor storing every partition")
    await load.wait_keys(KEYS)
    await load.stop()

    await settled_as_one_evaluator_would(rig, load, survivor)
