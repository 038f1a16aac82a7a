"""The one clock seam: every "now" in tripwire comes from `now()`.

Tests move time with `frozen_clock` / `set_clock` instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def _system_now() -> datetime:
    return datetime.now(UTC)


_clock: Clock = _system_now


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _clock()


def set_clock(clock: Clock | None) -> None:
    """Replace the clock (None restores the system clock)."""
    global _clock
    _clock = clock or _system_now


class FrozenClock:
    """A clock that stands still until moved; hand it to `set_clock`."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware start time")
        self.current = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by `delta` and return the new now."""
        self.current += delta
        return self.current


@contextmanager
def frozen_clock(start: datetime | None = None) -> Iterator[FrozenClock]:
    """Freeze `now()` for the block; the yielded clock can be advanced."""
    clock = FrozenClock(start or _system_now())
    previous = _clock
    set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)
