"""Fixtures of the fault suite: a fresh PostgreSQL database, a `Lab` that kills every
process it started, the webhook receiver, and a `Rig` tying them to one namespace."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.faults.processes import Lab, NatsCluster, Tripwire
from tests.faults.workload import Load, Probe, SlowReceiver, automation
from tests.support import POSTGRES_URL, asyncpg_dsn
from triggers.repository import AutomationStore
from tripwire.database import create_engine, migrate


@pytest.fixture
async def postgres_dsn() -> AsyncIterator[str]:
    """A new PostgreSQL database (asyncpg DSN), dropped afterwards; skipped locally without
    TRIPWIRE_TEST_POSTGRES_URL, failed in CI."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("TRIPWIRE_TEST_POSTGRES_URL must be set in CI")
        pytest.skip("TRIPWIRE_TEST_POSTGRES_URL is not set")
    admin_dsn = asyncpg_dsn(POSTGRES_URL)
    name = f"tw_faults_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield f"{admin_dsn.rsplit('/', 1)[0]}/{name}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """Starts processes; kills whatever still runs when the test ends, failed or not."""
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
async def receiver() -> AsyncIterator[SlowReceiver]:
    """The webhook target of the automation, on a free loopback port."""
    async with SlowReceiver(delay=0.1) as hook:
        yield hook


class Rig:
    """One scenario's parts: NATS, the database with the automation applied, the
    receiver, and the settings every tripwire process gets."""

    def __init__(
        self, lab: Lab, nats: NatsCluster, dsn: str, receiver: SlowReceiver, probe: Probe
    ) -> None:
        self.lab = lab
        self.nats = nats
        self.dsn = dsn
        self.receiver = receiver
        self.probe = probe
        self.namespace = probe.namespace
        self.loads: list[Load] = []

    def env(self, **extra: Any) -> dict[str, str]:
        values = {
            "DATABASE_URL": self.dsn.replace("postgresql://", "postgresql+asyncpg://"),
            "NATS_URL": self.nats.url,
            "NAMESPACE": self.namespace,
            "STREAM_REPLICAS": str(len(self.nats.nodes)),
            "STORE_BATCH_SIZE": "10",  # many batches: a fault lands in the middle of one
            "ACTION_CONCURRENCY": "4",
            "ACTION_TIMEOUT": "2s",  # a killed worker's claim lapses 7 s after it was taken
            "ALLOW_PRIVATE_URLS": "true",  # the receiver is on loopback
            "AUTOMATIONS_POLL": "0.2",
        }
        values |= {k.upper(): str(v) for k, v in extra.items()}
        return {f"TRIPWIRE_{k}": v for k, v in values.items()}

    def load(self, api: Tripwire, **options: Any) -> Load:
        """A load on this API (options: see Load), cancelled at the end of the test if
        still running."""
        self.loads.append(Load(api.url, **options))
        return self.loads[-1]

    def api(self, **settings: Any) -> Tripwire:
        return self.lab.tripwire("api", self.env(**settings))

    def worker(self, **settings: Any) -> Tripwire:
        return self.lab.tripwire("worker", self.env(**settings))

    async def terminate_backends(self, only_busy: bool = False) -> int:
        """pg_terminate_backend on every other connection to the test database (with
        `only_busy`: only when one of them is inside a statement or a transaction)."""
        conn = self.probe.conn
        if only_busy:
            anyone_busy = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
            )
            if not anyone_busy:
                return 0
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()) AS killed"
            )
        )


async def make_rig(
    postgres_dsn: str, lab: Lab, receiver: SlowReceiver, nats_nodes: int = 1
) -> AsyncIterator[Rig]:
    nats = lab.nats(nats_nodes)
    await nats.wait_jetstream()
    db = create_engine(postgres_dsn)
    try:
        await migrate(db)
        await AutomationStore(db).apply([automation(receiver.url("/hook"))])
    finally:
        await db.dispose()
    conn = await asyncpg.connect(postgres_dsn)
    rig = Rig(lab, nats, postgres_dsn, receiver, Probe(conn, nats, f"f{uuid.uuid4().hex[:8]}"))
    try:
        yield rig
    finally:
        for load in rig.loads:
            await load.cancel()
        await conn.close()


@pytest.fixture
async def rig(postgres_dsn: str, lab: Lab, receiver: SlowReceiver) -> AsyncIterator[Rig]:
    """A rig on one nats-server."""
    # The database first: torn down last, after the lab killed the processes using it.
    async for made in make_rig(postgres_dsn, lab, receiver):
        yield made


@pytest.fixture
async def cluster_rig(postgres_dsn: str, lab: Lab, receiver: SlowReceiver) -> AsyncIterator[Rig]:
    """A rig on a 3-node JetStream cluster (streams with 3 replicas)."""
    async for made in make_rig(postgres_dsn, lab, receiver, nats_nodes=3):
        yield made
