"""The Jinja2 sandbox templates render in, with per-render limits so one template cannot
take a worker's CPU or memory:
- MAX_ITERATIONS loop passes, range() items and calls together (nested loops, recursion);
- MAX_SECONDS of work, checked at each of those (a loop doing costly tests on event data);
- MAX_OUTPUT characters of output;
- no string or list longer than MAX_OUTPUT, nor number longer than MAX_DIGITS digits, is
  built: `*`, `**`, `+`, `%`, widths (center, ljust, format specs), replace and join are
  checked before they build; literals, `~`, filter and macro results, call arguments and
  `{% set %}` blocks right after, so a value can at most grow by a small factor past it.

The parts: `limits` (the numbers and the error), `budget` (iterations and the clock),
`sizes` (what a value weighs, and the checks before building), `filters` (Jinja's
filters that build, checked), `guard` (the rewrite of compiled templates that routes
loops and literals through the budget and the checks), `environment` (the Sandbox).
"""

from events.sandbox.budget import BUDGET, Budget
from events.sandbox.environment import Sandbox
from events.sandbox.guard import Guard
from events.sandbox.limits import (
    MAX_CACHED,
    MAX_DIGITS,
    MAX_ITERATIONS,
    MAX_OUTPUT,
    MAX_SECONDS,
    Limit,
)
from events.sandbox.sizes import check_output

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
