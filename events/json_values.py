"""JSON values that can be stored and sent back: orjson writes every JSON column and
answer, and refuses integers outside [-2**63, 2**64 - 1]. A definition holding a larger one
is refused where it is read, naming the field, instead of failing when it is stored."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

SMALLEST = -(2**63)
LARGEST = 2**64 - 1


def _in_range(value: Any, where: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int) and not SMALLEST <= value <= LARGEST:
        raise ValueError(
            f"{where or 'value'}: {value} is outside the 64-bit integer range; "
            "send a smaller number, or a string"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _in_range(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _in_range(item, f"{where}[{index}]")


def _checked(value: dict[str, Any]) -> dict[str, Any]:
    _in_range(value, "")
    return value


JSONObject = Annotated[dict[str, Any], AfterValidator(_checked)]
"""A JSON object whose integers fit in 64 bits."""
