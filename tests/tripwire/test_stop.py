"""Stopping an engine lets a database pass under way finish: a pass cancelled inside a
statement leaves its connection to the garbage collector instead of the pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tripwire.engine import Engine, Role
from tripwire.settings import Settings


def held_sweep(engine: Engine) -> tuple[asyncio.Event, asyncio.Event, list[str]]:
    """Make the engine's retention sweep wait for a gate; (started, gate, what happened)."""
    started, gate, happened = asyncio.Event(), asyncio.Event(), []
    real = engine.sweep_once

    async def sweep() -> int:
        started.set()
        try:
            await gate.wait()
        except asyncio.CancelledError:
            happened.append("cancelled")
            raise
        removed = await real()
        happened.append("finished")
        return removed

    engine.sweep_once = sweep  # type: ignore[method-assign]
    return started, gate, happened


async def test_stop_waits_for_a_sweep_under_way(settings_factory: Callable[..., Settings]) -> None:
    engine = Engine(settings_factory(), frozenset({Role.worker}))
    started, gate, happened = held_sweep(engine)
    await engine.start()  # the first sweep runs at start
    async with asyncio.timeout(10):
        await started.wait()
    stopping = asyncio.create_task(engine.stop())
    await asyncio.sleep(0)
    assert not stopping.done()  # waits for the sweep
    gate.set()
    async with asyncio.timeout(10):
        await stopping
    assert happened == ["finished"]  # not cut short, and no second pass began


async def test_stop_cancels_a_sweep_that_outlasts_the_grace(
    settings_factory: Callable[..., Settings],
) -> None:
    engine = Engine(settings_factory(), frozenset({Role.worker}))
    started, _, happened = held_sweep(engine)  # the gate never opens
    await engine.start()
    async with asyncio.timeout(10):
        await started.wait()
        await engine.stop(grace=0.05)
    assert happened == ["cancelled"]
