"""Durations as people write them: `90`, `90s`, `10m`, `2h`, `7d`, `1w`, or ISO 8601."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
# Windows and deadlines are added to "now": a longer duration would run past the year 9999
# and stop evaluation (OverflowError) for every event, not just the automation's own.
MAX_DURATION = timedelta(days=36_500)


def parse_duration(value: Any) -> Any:
    """A timedelta from seconds or `<number><s|m|h|d|w>`; other values pass through."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds: float = value
    elif isinstance(value, str) and (match := _PATTERN.match(value)):
        number, unit = match.groups()
        seconds = float(number) * _UNITS[(unit or "s").lower()]
    else:
        return value
    try:
        return timedelta(seconds=seconds)
    except OverflowError:  # past timedelta's range: pydantic's own check names the limit
        return seconds


def _bounded(value: timedelta) -> timedelta:
    if abs(value) > MAX_DURATION:
        raise ValueError("a duration may be at most 100 years (36500d)")
    return value


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


# Serialized as seconds, as Prefect writes `within: 600.0`.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_bounded),
    PlainSerializer(_seconds, return_type=float, when_used="json"),
]
