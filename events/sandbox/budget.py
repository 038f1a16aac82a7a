"""The work budget of one render: loop passes, range() items and calls counted together
against MAX_ITERATIONS, and the clock checked at each against MAX_SECONDS."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from events.sandbox.limits import MAX_ITERATIONS, Limit


@dataclass
class Budget:
    """What one render may still spend: iterations left, and a deadline."""

    seconds: float
    left: int = MAX_ITERATIONS
    deadline: float = math.inf

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds


# The render in progress sets its budget here (see `events.templating`).
BUDGET: ContextVar[Budget | None] = ContextVar("tripwire_template_budget", default=None)


def charge(n: int) -> None:
    """Spend `n` iterations of the current render's budget and check its clock."""
    budget = BUDGET.get()
    if budget is None:  # outside a render (compile-time folding): this call alone
        budget = Budget(seconds=math.inf)
    budget.left -= n
    if budget.left < 0:
        raise Limit(
            f"the template makes more than {MAX_ITERATIONS:,} loop passes, range() items and "
            "calls in one render; loop over less (slice a list: items[:100]) or split the work "
            "across actions"
        )
    if time.monotonic() > budget.deadline:
        raise Limit(
            f"the template took more than {budget.seconds:g}s to render; do less work per "
            "render (loop over fewer items, avoid `in` tests on long lists inside loops)"
        )


def charged_range(*args: int) -> range:
    """`range()` for templates: its items are paid for up front."""
    items = range(*args)
    try:
        charge(len(items))
    except OverflowError:  # longer than sys.maxsize
        charge(sys.maxsize)
    return items


def charged_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` iterates through this, so nested loops over event data are paid."""
    for item in iterable:
        charge(1)
        yield item
