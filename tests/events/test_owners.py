"""Partitions of the events stream by key, and the workers that store them: the stream
keeps a resource's events in one partition, the partitions are dealt evenly over the
workers alive, and a worker that joins, leaves or stops renewing changes the deal."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import orjson
import pytest

from events.bus import Bus, Names, StreamSettings
from events.consumer import store_consumer
from events.embedded import EmbeddedNats
from events.keys import EventMessage, key_token
from events.owners import LaneHandler, PartitionOwner, deal
from tests.support import eventually

PARTITIONS = 4


@pytest.fixture
async def names() -> Names:
    return Names(f"o{uuid.uuid4().hex[:8]}")


async def partitioned_bus(nats_server: EmbeddedNats, names: Names) -> Bus:
    bus = Bus(nats_server.url, names, StreamSettings(partitions=PARTITIONS))
    await bus.connect()
    return bus


@pytest.fixture
async def bus(nats_server: EmbeddedNats, names: Names) -> AsyncIterator[Bus]:
    bus = await partitioned_bus(nats_server, names)
    yield bus
    await bus.close()


def events_about(resources: Sequence[str], each: int) -> list[EventMessage]:
    return [
        EventMessage(uuid.uuid4(), orjson.dumps({"resource": resource, "n": n}), resource)
        for n in range(each)
        for resource in resources
    ]


class Stored:
    """A worker's store: what each owner was handed, by resource."""

    def __init__(self) -> None:
        self.resources: dict[str, list[str]] = defaultdict(list)  # owner -> resources

    def handler(self, owner: str) -> LaneHandler:
        async def handle(batch: Sequence[bytes], lane: int) -> None:
            self.resources[owner] += [orjson.loads(body)["resource"] for body in batch]

        return handle

    def count(self) -> int:
        return sum(len(seen) for seen in self.resources.values())


def test_the_deal_is_even_and_the_same_whatever_the_order_of_the_members() -> None:
    dealt = deal(8, ["c", "a", "b"])
    assert dealt == {"a": [0, 3, 6], "b": [1, 4, 7], "c": [2, 5]}
    assert deal(8, ["b", "c", "a"]) == dealt
    assert deal(3, ["x", "y", "z", "w"])["z"] == []


async def test_the_stream_keeps_each_resources_events_in_one_partition(bus: Bus) -> None:
    resources = [f"prefect.flow-run.{n}" for n in range(40)]
    await bus.publish_events(events_about(resources, 3))
    info = await bus.js.stream_info(bus.names.events_stream, subjects_filter=">")
    partitions_of: dict[str, set[str]] = defaultdict(set)
    for subject, count in info.state.subjects.items():
        _, _, p, partition, token = subject.split(".")
        assert p == "p", f"{subject} was not mapped to a partition"
        partitions_of[token].add(partition)
        assert count == 3, f"{subject}: one resource's events are split"
    assert set(partitions_of) == {key_token(r) for r in resources}
    assert all(len(found) == 1 for found in partitions_of.values())
    used = set().union(*partitions_of.values())
    assert used == {str(p) for p in range(PARTITIONS)}, "40 keys land in every partition"


async def test_workers_share_the_partitions_and_take_those_of_one_that_leaves(
    nats_server: EmbeddedNats, names: Names, bus: Bus
) -> None:
    stored = Stored()
    first = PartitionOwner(bus, stored.handler("first"), name="a-first", read_every=0.05)
    await first.start()
    assert first.owned == [0, 1, 2, 3]
    other_bus = await partitioned_bus(nats_server, names)
    second = PartitionOwner(other_bus, stored.handler("second"), name="b-second", read_every=0.05)
    await second.start()
    try:
        assert second.owned == [1, 3]

        async def split() -> bool:
            return first.owned == [0, 2]

        await eventually(split, 10, "the first worker giving up partitions 1 and 3")
        resources = [f"prefect.flow-run.{n}" for n in range(40)]
        await bus.publish_events(events_about(resources, 2))

        async def all_stored() -> bool:
            return stored.count() == 80

        await eventually(all_stored, 10, "80 events handed to the workers")
        first_seen, second_seen = set(stored.resources["first"]), set(stored.resources["second"])
        assert first_seen, "the first worker stored none"
        assert second_seen, "the second worker stored none"
        assert not first_seen & second_seen, "a resource's events went to both workers"

        await second.stop()

        async def taken_back() -> bool:
            return first.owned == [0, 1, 2, 3]

        await eventually(taken_back, 10, "the first worker taking every partition back")
        await bus.publish_events(events_about(["prefect.flow-run.late"], 1))

        async def late_stored() -> bool:
            return "prefect.flow-run.late" in stored.resources["first"]

        await eventually(late_stored, 10, "the first worker storing a partition it took")
    finally:
        await second.stop()
        await first.stop()
        await other_bus.close()


async def test_a_worker_that_stops_renewing_is_dealt_out_when_its_entry_expires(
    nats_server: EmbeddedNats, names: Names, bus: Bus
) -> None:
    stored = Stored()
    other_bus = await partitioned_bus(nats_server, names)
    # A worker that died: in the members, never renewing (as after kill -9).
    silent = PartitionOwner(other_bus, stored.handler("silent"), name="a-silent", member_ttl=1.0)
    await silent.start()
    assert silent._task is not None
    silent._task.cancel()  # its renewals stop; its consumers stay as they were
    alive = PartitionOwner(
        bus, stored.handler("alive"), name="b-alive", member_ttl=1.0, read_every=0.05
    )
    await alive.start()
    try:
        assert alive.owned == [1, 3]
        assert sorted(await alive.members()) == ["a-silent", "b-alive"]

        async def alone() -> bool:
            return alive.owned == [0, 1, 2, 3]

        await eventually(alone, 10, "the live worker taking the silent one's partitions")
        assert await alive.members() == ["b-alive"]
    finally:
        await alive.stop()
        await other_bus.close()


async def test_partitions_pick_up_where_the_one_store_consumer_left_off(
    nats_server: EmbeddedNats, names: Names
) -> None:
    single = Bus(nats_server.url, names)
    await single.connect()

    before = Stored()
    handle = before.handler("single")
    consumer = store_consumer(single, lambda batch: handle(batch, 0), batch_size=100)
    await consumer.start()
    await single.publish_events(events_about([f"r{n}" for n in range(10)], 1))

    async def ten() -> bool:
        return before.count() == 10 and await single.store_lag() == 0

    await eventually(ten, 10, "ten events stored by the one consumer")
    await consumer.stop()
    await single.close()

    bus = await partitioned_bus(nats_server, names)
    after = Stored()
    owner = PartitionOwner(bus, after.handler("owner"), name="a", read_every=0.05)
    await owner.start()
    try:
        await bus.publish_events(events_about(["r-new"], 1))

        async def stored_new() -> bool:
            return await bus.store_lag() == 0 and after.count() >= 1

        await eventually(stored_new, 10, "the new event stored by a partition")
        assert after.resources["owner"] == ["r-new"], "partitions read the old events again"
    finally:
        await owner.stop()
        await bus.close()


async def test_a_worker_stores_two_of_its_partitions_at_once_in_lanes_of_their_own(
    bus: Bus,
) -> None:
    in_lanes: list[int] = []
    both_in = asyncio.Event()

    async def handle(batch: Sequence[bytes], lane: int) -> None:
        in_lanes.append(lane)
        if len(in_lanes) == 2:
            both_in.set()
        await both_in.wait()  # the first batch waits until a second one is handled

    owner = PartitionOwner(bus, handle, lanes=2, name="a")
    await owner.start()
    try:
        resources = [f"prefect.flow-run.{n}" for n in range(40)]  # every partition
        await bus.publish_events(events_about(resources, 1))
        async with asyncio.timeout(10):
            await both_in.wait()
        assert sorted(in_lanes[:2]) == [0, 1]
    finally:
        await owner.stop()
