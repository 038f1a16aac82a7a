"""Size accounting: no string or list longer than MAX_OUTPUT, nor number longer than
MAX_DIGITS digits, is built. Operators, widths, replace and join are checked before they
build, from the sizes of what goes in; other values are weighed right after."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any, Final

from jinja2.utils import Namespace
from pydantic import BaseModel

from events.sandbox.budget import charge
from events.sandbox.limits import MAX_DIGITS, MAX_OUTPUT, Limit

_LOG10_2: Final = math.log10(2)


def check_size(size: int, what: str) -> None:
    """Refuse a string or list of `size` characters or items past MAX_OUTPUT."""
    if size > MAX_OUTPUT:
        raise Limit(
            f"{what} is {size:,} characters or items long; at most {MAX_OUTPUT:,} are "
            "allowed: build smaller strings and lists"
        )


def check_digits(digits: float, what: str) -> None:
    """Refuse a number of `digits` digits past MAX_DIGITS."""
    if digits > MAX_DIGITS:
        shown = "too many" if math.isinf(digits) else f"about {int(digits):,}"
        raise Limit(
            f"{what} would be a number of {shown} digits; at most {MAX_DIGITS:,} are "
            "allowed: use smaller numbers"
        )


def weight(value: Any, limit: int = MAX_OUTPUT) -> int:
    """About how many characters `str(value)` takes, counting a shared value each time it
    appears (that is how `[big] * n` blows up); stops counting once past `limit`."""
    stack, total, seen = [value], 0, 0
    while stack and total <= limit:
        item = stack.pop()
        seen += 1
        if seen % 4096 == 0:
            charge(0)  # the clock
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, int):
            total += int(item.bit_length() * _LOG10_2) + 1
        elif isinstance(item, Mapping):
            total += 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2
            stack.extend(item)
        elif isinstance(item, BaseModel):
            total += 16
            stack.extend(item.__dict__.values())
        elif is_dataclass(item) and not isinstance(item, type):
            total += 16
            stack.extend(getattr(item, f.name) for f in fields(item))
        elif isinstance(item, Namespace):
            total += 16
            stack.extend(object.__getattribute__(item, "_Namespace__attrs").values())
        else:
            total += 16  # None, floats, UUIDs, datetimes: short
    return total


def sized(value: Any) -> Any:
    """Wraps literals, `~` and `{% set %}` blocks: what was just built is not too big."""
    check_size(weight(value), "a value the template built")
    return value


def check_mul(left: Any, right: Any) -> None:
    """Check what `left * right` would build."""
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int) and times > 0:
            check_size(weight(seq) * times, "the result of '*'")
    if isinstance(left, int) and isinstance(right, int):
        check_digits((left.bit_length() + right.bit_length()) * _LOG10_2, "the result of '*'")


def check_pow(base: Any, exp: Any) -> None:
    """Check what `base ** exp` would build."""
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1:
        digits = math.inf if exp > 10**9 else exp * math.log10(abs(base))
        check_digits(digits, "the result of '**'")


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?([^a-zA-Z%]*)")


def check_spec(spec: str, what: str) -> None:
    """A format spec's widths: written as numbers, none past MAX_OUTPUT."""
    if "*" in spec or "{" in spec:
        raise Limit(f"{what} has a computed width, which is not allowed; write it as a number")
    for number in re.findall(r"\d+", spec):
        check_size(int(number), f"the width in {what}")


def check_printf(fmt: str, what: str = "a % format") -> None:
    """The widths of every spec of a % format."""
    for spec in _PRINTF_SPEC.findall(fmt):
        check_spec(spec, what)


def check_replace(text: str, old: str, new: str, count: int, what: str) -> None:
    """Check what replacing `old` by `new` in `text` (at most `count` times) would build."""
    hits = text.count(old) if old else len(text) + 1
    if count >= 0:
        hits = min(hits, count)
    check_size(len(text) + hits * len(new), what)


def check_join(sep: str, items: list[Any], what: str) -> None:
    """Check what joining `items` with `sep` would build."""
    total = len(sep) * max(len(items) - 1, 0)
    for item in items:
        if total > MAX_OUTPUT:
            break
        total += weight(item)
    check_size(total, what)


_WIDTH_METHODS: Final = frozenset({"center", "ljust", "rjust", "zfill"})


def check_str_call(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Check what a call of the str method `name` on `text` would build."""
    what = f"the result of str.{name}()"
    if name in _WIDTH_METHODS and args and isinstance(args[0], int):
        check_size(args[0], what)
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            check_size(len(text) + text.count("\t") * size, what)
    elif name == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        check_replace(text, str(args[0]), str(args[1]), int(count), what)
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((weight(v) for v in args[0].values()), default=1)
        check_size(len(text) * longest, what)


def check_output(size: int) -> None:
    """Refuse a rendered text of `size` characters past MAX_OUTPUT."""
    if size > MAX_OUTPUT:
        raise Limit(
            f"the rendered text is longer than {MAX_OUTPUT:,} characters; render less "
            "(e.g. |truncate(1000) or a slice like items[:20]) and link to the details"
        )
