"""The Jinja2 sandbox templates render in, with per-render limits so one template cannot
take a worker's CPU or memory."""

from events.sandbox.environment import (
    BUDGET,
    MAX_CACHED,
    MAX_DIGITS,
    MAX_ITERATIONS,
    MAX_OUTPUT,
    MAX_SECONDS,
    Budget,
    Guard,
    Limit,
    Sandbox,
    check_output,
)

__all__ = [
    "BUDGET",
    "MAX_CACHED",
    "MAX_DIGITS",
    "MAX_ITERATIONS",
    "MAX_OUTPUT",
    "MAX_SECONDS",
    "Budget",
    "Guard",
    "Limit",
    "Sandbox",
    "check_output",
]
