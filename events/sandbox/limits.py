"""The per-render limits of the template sandbox, and the error that says one was reached."""

from __future__ import annotations

from typing import Final

MAX_ITERATIONS: Final = 10_000  # loop passes + range() items + calls, per render
MAX_SECONDS: Final = 1.0  # per render
MAX_OUTPUT: Final = 100_000  # characters rendered; also the longest string or list built
MAX_DIGITS: Final = 4_000  # Python refuses to print ints past 4,300 digits anyway
MAX_CACHED: Final = 4_096  # compiled templates kept per worker


class Limit(Exception):
    """A sandbox limit was reached; the message says which one and what to do instead."""
