"""The known workload of every fault scenario, and the checks at the end.

Events: three `fault.item.done` per key (`fault.key.<n>`). One automation fires once per
key at the third (threshold 3 within 10 minutes, for each resource) and has two actions:
a `call-webhook` to a local receiver and an `emit-event` of `fault.echo`. So for K keys
whose events were accepted, the end state must hold exactly:
- every accepted event stored once; K `tripwire.automation.triggered`, one per key;
- 2K ledger rows, all succeeded, and 2K `tripwire.action.executed` events;
- K `fault.echo` events (their ids come from the request ids, so stored once);
- the receiver saw K distinct `Idempotency-Key`s, the webhook requests' ids (a worker killed
  mid-call may make the receiver see one again, with the same key: at most once after
  dedupe, the call-webhook guarantee);
- nothing left in the outbox, nothing pending on either consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import nats.errors
from nats.js.errors import APIError

from events.client import AsyncTripwireClient, build_event
from events.model import Event
from tests.actions.receivers import Received, Receiver, read_body
from tests.faults.processes import NatsCluster
from triggers.automation import Automation

ITEM = "fault.item.done"
ECHO = "fault.echo"
TRIGGERED = "tripwire.automation.triggered"
EXECUTED = "tripwire.action.executed"
PER_KEY = 3

Message = MutableMapping[str, Any]


def key_id(key: int) -> str:
    return f"fault.key.{key}"


def automation(webhook_url: str) -> Automation:
    """Fires once per key, at its third event; one webhook call and one emitted event."""
    return Automation.model_validate(
        {
            "name": "fault-three-per-key",
            "trigger": {
                "type": "event",
                "expect": [ITEM],
                "for_each": ["prefect.resource.id"],
                "threshold": PER_KEY,
                "within": "10m",
            },
            "actions": [
                {
                    "type": "call-webhook",
                    "url": webhook_url,
                    "json": {
                        "key": "{{ labels['prefect.resource.id'] }}",
                        "firing": "{{ firing.id }}",
                    },
                    "retries": 10,
                    "retry_delay": "0.5s",
                },
                {
                    "type": "emit-event",
                    "event": ECHO,
                    "resource": {"prefect.resource.id": "{{ labels['prefect.resource.id'] }}"},
                },
            ],
        }
    )


def items(keys: range) -> list[Event]:
    """Three events per key, round by round, so a key's third event comes last."""
    return [
        build_event(ITEM, key_id(key), payload={"round": round_})
        for round_ in range(PER_KEY)
        for key in keys
    ]


class SlowReceiver(Receiver):
    """The webhook target: records each request on arrival, answers 200 after `delay`
    (so actions are in flight when a worker is killed)."""

    def __init__(self, delay: float = 0.1) -> None:
        super().__init__()
        self.delay = delay

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(
            Received(scope["method"], scope["path"], "", headers, body, time.monotonic())
        )
        await asyncio.sleep(self.delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def by_key(self) -> Counter[str]:
        """Requests per Idempotency-Key."""
        return Counter(r.headers.get("idempotency-key", "") for r in self.requests)


@dataclass
class Load:
    """Posts blocks of keys (all their events in one request) through the Python client,
    which retries on 503 and connection errors, until `stop`; keeps what was accepted."""

    api_url: str
    keys_per_block: int = 2
    pause: float = 0.05  # between requests: a steady load, not a flood to drain afterwards
    accepted: list[UUID] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    retry_after: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def _seen(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 503:
            self.retry_after.append(response.headers.get("retry-after", ""))

    async def _run(self, limit: int | None) -> None:
        block = 0
        async with AsyncTripwireClient(self.api_url, retries=30, timeout=10) as client:
            client._http.event_hooks["response"].append(self._seen)
            while not self._stop.is_set() and (limit is None or len(self.keys) < limit):
                keys = range(block * self.keys_per_block, (block + 1) * self.keys_per_block)
                events = items(keys)
                self.accepted += await client.emit(events)
                self.events += events
                self.keys += keys
                block += 1
                await asyncio.sleep(self.pause)

    def start(self, limit: int | None = None) -> None:
        """Post in the background, up to `limit` keys (default: until `stop`)."""
        self._task = asyncio.create_task(self._run(limit))

    async def wait_keys(self, count: int, timeout: float = 60.0) -> None:
        """Until at least `count` keys were accepted (more than now: `len(keys) + n`)."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.keys) < count:
                    if self._task is not None and self._task.done():
                        self._task.result()  # raises what stopped it
                        raise AssertionError(f"the load ended at {len(self.keys)} keys")
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(
                f"{len(self.keys)} of {count} keys accepted within {timeout}s "
                f"(answers so far: {dict(self.statuses)})"
            ) from None

    async def stop(self) -> None:
        """Finish the request in hand (the client retries it until accepted) and stop."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class Probe:
    """Reads the end state: the test database (one asyncpg connection) and the consumers."""

    def __init__(self, conn: asyncpg.Connection, nats: NatsCluster, namespace: str) -> None:
        self.conn = conn
        self.nats = nats
        self.namespace = namespace

    async def count(self, event: str) -> int:
        return int(await self.conn.fetchval("SELECT count(*) FROM events WHERE event = $1", event))

    async def ids(self, event: str) -> list[str]:
        rows = await self.conn.fetch("SELECT id FROM events WHERE event = $1", event)
        return [row["id"] for row in rows]

    async def bodies(self, event: str) -> list[dict[str, Any]]:
        rows = await self.conn.fetch("SELECT body FROM events WHERE event = $1", event)
        return [json.loads(row["body"]) for row in rows]

    async def ledger(self) -> list[asyncpg.Record]:
        return list(await self.conn.fetch("SELECT id, action_type, status FROM action_ledger"))

    async def outbox(self) -> int:
        return int(await self.conn.fetchval("SELECT count(*) FROM outbox"))

    async def _consumers(self) -> list[Any] | None:
        """consumer_info of the store consumers (one, or one per partition) and the
        actions consumer, the actions' last; None when NATS does not answer."""
        ns = self.namespace
        nc = await self.nats.connect()
        try:
            js = nc.jetstream(timeout=2)
            stored = await js.consumers_info(f"{ns.upper()}_EVENTS")
            store = [i for i in stored if i.name.startswith(f"{ns}-store")]
            return [*store, await js.consumer_info(f"{ns.upper()}_ACTIONS", f"{ns}-actions")]
        except (APIError, nats.errors.Error, TimeoutError):
            return None
        finally:
            await nc.close()

    async def pending(self) -> int | None:
        """Messages not yet acknowledged on the store and actions consumers."""
        infos = await self._consumers()
        if infos is None:
            return None
        return sum(int(i.num_pending or 0) + int(i.num_ack_pending or 0) for i in infos)

    async def drained(self) -> bool:
        """Nothing left in the outbox, nothing pending on either consumer."""
        return await self.outbox() == 0 and await self.pending() == 0

    async def delivered_unacked(self) -> int:
        """Events delivered to a worker and not acknowledged (in a batch or prefetched)."""
        infos = await self._consumers()
        assert infos is not None, "NATS did not answer"
        return sum(int(info.num_ack_pending or 0) for info in infos[:-1])

    async def running_actions(self) -> int:
        """Ledger rows claimed by a worker and not finished."""
        return int(
            await self.conn.fetchval("SELECT count(*) FROM action_ledger WHERE status = 'running'")
        )

    async def settled(self, accepted: int, keys: int, receiver: SlowReceiver) -> bool:
        """Everything the workload implies has happened and nothing is in flight."""
        ledger = await self.ledger()
        return (
            await self.count(ITEM) >= accepted
            and await self.count(TRIGGERED) >= keys
            and await self.count(ECHO) >= keys
            and await self.count(EXECUTED) >= 2 * keys
            and len(ledger) >= 2 * keys
            and all(row["status"] == "succeeded" for row in ledger)
            and len(receiver.by_key()) >= keys
            and await self.drained()
        )

    async def wait_settled(
        self, accepted: int, keys: int, receiver: SlowReceiver, timeout: float
    ) -> float:
        """Poll until settled; returns the seconds it took."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                while not await self.settled(accepted, keys, receiver):
                    await asyncio.sleep(0.25)
        except TimeoutError:
            raise AssertionError(f"not settled within {timeout}s: {await self.summary()}") from None
        return time.monotonic() - started

    async def summary(self) -> dict[str, Any]:
        ledger = await self.ledger()
        return {
            ITEM: await self.count(ITEM),
            TRIGGERED: await self.count(TRIGGERED),
            ECHO: await self.count(ECHO),
            EXECUTED: await self.count(EXECUTED),
            "ledger": Counter(row["status"] for row in ledger),
            "outbox": await self.outbox(),
            "pending": await self.pending(),
        }

    async def assert_exactly_once(
        self, accepted: list[UUID], keys: list[int], receiver: SlowReceiver
    ) -> None:
        """The end state of the module docstring, exactly."""
        assert len(set(accepted)) == len(accepted) == PER_KEY * len(keys)
        stored = await self.ids(ITEM)
        assert sorted(stored) == sorted(str(i) for i in accepted), "lost or unexpected events"

        fired = await self.bodies(TRIGGERED)
        per_key = Counter(f["payload"]["triggering_labels"]["prefect.resource.id"] for f in fired)
        assert per_key == Counter({key_id(k): 1 for k in keys}), "firings lost or doubled"

        ledger = await self.ledger()
        assert Counter(row["action_type"] for row in ledger) == {
            "call-webhook": len(keys),
            "emit-event": len(keys),
        }
        assert {row["status"] for row in ledger} == {"succeeded"}
        assert await self.count(EXECUTED) == 2 * len(keys)

        echoes = await self.conn.fetch("SELECT resource_id FROM events WHERE event = $1", ECHO)
        assert sorted(r["resource_id"] for r in echoes) == sorted(key_id(k) for k in keys)

        webhook_ids = {row["id"] for row in ledger if row["action_type"] == "call-webhook"}
        assert set(receiver.by_key()) == webhook_ids, "a webhook call without its request id"
        bodies = {r.headers["idempotency-key"]: r.json()["key"] for r in receiver.requests}
        assert sorted(bodies.values()) == sorted(key_id(k) for k in keys)
        assert await self.outbox() == 0
        assert await self.pending() == 0
