"""Causal order: an event that `follows` another is evaluated after it, as in Prefect."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from events import clock
from events.model import ReceivedEvent
from tests.triggers.conftest import Harness, at, fired, flow_run

RUNNING_AFTER_PENDING: dict[str, Any] = {
    "name": "started",
    "trigger": {
        "type": "event",
        "after": ["prefect.flow-run.Pending"],
        "expect": ["prefect.flow-run.Running"],
        "for_each": ["prefect.resource.id"],
        "within": "10m",
    },
    "actions": [{"type": "do-nothing"}],
}


def pair() -> tuple[ReceivedEvent, ReceivedEvent]:
    pending = flow_run("Pending", when=at(0)).receive()
    running = flow_run("Running", when=at(1)).model_copy(update={"follows": pending.id})
    return pending, running.receive()


async def test_an_early_follower_waits_for_its_leader(harness: Harness) -> None:
    harness.load(RUNNING_AFTER_PENDING)
    pending, running = pair()
    early = await harness.send(running)
    assert fired(early) == []
    assert early.decisions == []  # held back, not evaluated yet
    leader = await harness.send(pending)
    assert fired(leader) == ["started:triggered"]
    assert leader.firings[0].event is not None
    assert leader.firings[0].event.id == running.id


async def test_a_batch_is_put_in_causal_order(harness: Harness) -> None:
    harness.load(RUNNING_AFTER_PENDING)
    pending, running = pair()
    assert fired(await harness.send(running, pending)) == ["started:triggered"]


async def test_a_follower_whose_leader_never_comes_is_evaluated_after_the_wait(
    harness: Harness,
) -> None:
    harness.load(RUNNING_AFTER_PENDING)
    _, running = pair()
    with clock.frozen_clock(clock.now()) as frozen:
        running = running.model_copy(update={"received": frozen.current})
        await harness.send(running)
        assert (await harness.due(at(2))).decisions == []
        frozen.advance(timedelta(minutes=15))
        result = await harness.due(at(2))
    assert [(d.outcome.value, d.event.id if d.event else None) for d in result.decisions] == [
        ("waiting", running.id)
    ]


async def test_old_events_are_not_held(harness: Harness) -> None:
    harness.load(RUNNING_AFTER_PENDING)
    _, running = pair()
    old = running.model_copy(update={"received": clock.now() - timedelta(hours=1)})
    result = await harness.send(old)
    assert [d.outcome.value for d in result.decisions] == ["waiting"]
