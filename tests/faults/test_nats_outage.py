"""NATS goes away under load: a single nats-server killed and restarted on the same port
and store, and a node of a 3-node JetStream cluster (streams with 3 replicas) lost and
brought back. The API answers 503 with Retry-After while it cannot publish, the Python
client retries, and everything it was told was accepted is stored, fired and acted on
once (see tests/faults/workload.py)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from nats.js.errors import APIError

from tests.faults.conftest import Rig
from tests.support import eventually

log = logging.getLogger("tests.faults")

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(150)]


async def test_nats_restarted_while_events_are_posted(rig: Rig) -> None:
    api, worker = rig.api(), rig.worker()
    await asyncio.gather(api.wait_healthy(), worker.wait_healthy())
    load = rig.load(api)
    load.start()
    await load.wait_keys(20)
    (node,) = rig.nats.nodes
    node.kill()
    log.info("killed nats-server at %d keys", len(load.keys))

    # During the outage the API says so, and when to come back; nothing is accepted.
    probe_event = {"event": "fault.probe", "resource": {"prefect.resource.id": "probe"}}
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        async with asyncio.timeout(20):
            while (answer := await http.post("/api/events", json=probe_event)).status_code != 503:
                await asyncio.sleep(0.05)
    assert answer.headers["retry-after"].isdigit()

    async def load_met_outage() -> bool:
        return load.statuses[503] >= 1

    await eventually(load_met_outage, 20, "the client's first 503")
    before_restart = len(load.keys)

    log.info(
        "the API answered 503 (Retry-After %s); restarting nats-server",
        answer.headers["retry-after"],
    )
    node.start()
    await load.wait_keys(before_restart + 20, timeout=60)
    await load.stop()
    log.info("load stopped at %d keys (answers: %s)", len(load.keys), dict(load.statuses))

    assert all(value.isdigit() for value in load.retry_after)
    await rig.probe.wait_settled(len(load.accepted), len(load.keys), rig.receiver, timeout=90)
    await rig.probe.assert_exactly_once(load.accepted, load.keys, rig.receiver)
    assert api.alive
    assert worker.alive


async def stream_leaders(rig: Rig) -> dict[str, str | None]:
    """The current leader of each of the namespace's streams (None while electing)."""
    nc = await rig.nats.connect()
    try:
        js = nc.jetstream(timeout=2)
        leaders: dict[str, str | None] = {}
        for suffix in ("EVENTS", "ACTIONS"):
            name = f"{rig.namespace.upper()}_{suffix}"
            try:
                info = await js.stream_info(name)
                leaders[name] = info.cluster.leader if info.cluster else None
            except (APIError, TimeoutError):
                leaders[name] = None
        return leaders
    finally:
        await nc.close()


async def replicas_current(rig: Rig) -> bool:
    """Every stream has a leader and all of its replicas are online and caught up."""
    nc = await rig.nats.connect()
    try:
        js = nc.jetstream(timeout=2)
        for suffix in ("EVENTS", "ACTIONS"):
            try:
                info = await js.stream_info(f"{rig.namespace.upper()}_{suffix}")
            except (APIError, TimeoutError):
                return False
            cluster = info.cluster
            if cluster is None or not cluster.leader or len(cluster.replicas or []) != 2:
                return False
            if not all(r.current and not r.offline for r in cluster.replicas or []):
                return False
        return True
    finally:
        await nc.close()


async def test_a_cluster_node_lost_under_load_and_brought_back(cluster_rig: Rig) -> None:
    rig = cluster_rig
    api, worker = rig.api(), rig.worker()
    await asyncio.gather(api.wait_healthy(), worker.wait_healthy())
    load = rig.load(api)
    load.start()
    await load.wait_keys(20)
    # The node leading the events stream: losing it forces an election mid-load.
    leaders = await stream_leaders(rig)
    leader = leaders[f"{rig.namespace.upper()}_EVENTS"]
    assert leader is not None, leaders
    lost = rig.nats.node(leader)
    lost.kill()
    log.info("killed %s, the events stream's leader, at %d keys", leader, len(load.keys))
    before = len(load.keys)
    await load.wait_keys(before + 20, timeout=60)  # on two nodes
    assert (await stream_leaders(rig))[f"{rig.namespace.upper()}_EVENTS"] != leader

    log.info("20 more keys accepted on two nodes; restarting %s", leader)
    lost.start()
    async with asyncio.timeout(60):
        while not await replicas_current(rig):
            await asyncio.sleep(0.2)
    log.info("%s caught up; %d keys", leader, len(load.keys))
    await load.wait_keys(len(load.keys) + 20, timeout=60)
    await load.stop()
    log.info("load stopped at %d keys (answers: %s)", len(load.keys), dict(load.statuses))

    await rig.probe.wait_settled(len(load.accepted), len(load.keys), rig.receiver, timeout=90)
    await rig.probe.assert_exactly_once(load.accepted, load.keys, rig.receiver)
    assert api.alive
    assert worker.alive
