"""Durations on the command line (`--since 1h`, `--until 2h`), written as in definition files."""

from __future__ import annotations

from datetime import timedelta

from events.durations import parse_duration
from tripwire.cli.output import fail


def duration(value: str) -> timedelta | None:
    """`value` as a duration (90, 10m, 2h, 7d), or None when it is not one."""
    parsed = parse_duration(value)
    return parsed if isinstance(parsed, timedelta) else None


def since_window(value: str) -> timedelta:
    """A --since duration, or the command ends saying how to write one."""
    window = duration(value)
    if window is None:
        fail(f"--since {value!r} is not a duration; use e.g. 30m, 1h, 7d")
    return window
