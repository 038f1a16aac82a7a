"""Durations as people write them: `90`, `90s`, `10m`, `2h`, `7d`, `1w`, or ISO 8601."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(value: Any) -> Any:
    """A timedelta from seconds or `<number><s|m|h|d|w>`; other values pass through."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            number, unit = match.groups()
            return timedelta(seconds=float(number) * _UNITS[(unit or "s").lower()])
    return value


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


# Serialized as seconds, as Prefect writes `within: 600.0`.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(_seconds, return_type=float, when_used="json"),
]
