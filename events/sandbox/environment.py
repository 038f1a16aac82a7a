"""The Jinja2 sandbox templates render in, with per-render limits so one template cannot
take a worker's CPU or memory:
- MAX_ITERATIONS loop passes, range() items and calls together (nested loops, recursion);
- MAX_SECONDS of work, checked at each of those (a loop doing costly tests on event data);
- MAX_OUTPUT characters of output;
- no string or list longer than MAX_OUTPUT, nor number longer than MAX_DIGITS digits, is
  built: `*`, `**`, `+`, `%`, widths (center, ljust, format specs), replace and join are
  checked before they build; literals, `~`, filter and macro results, call arguments and
  `{% set %}` blocks right after, so a value can at most grow by a small factor past it.
"""

from __future__ import annotations

import math
import re
import string
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, fields, is_dataclass
from functools import wraps
from typing import Any, Final

from jinja2 import StrictUndefined, nodes, pass_eval_context
from jinja2 import filters as jinja_filters
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer
from pydantic import BaseModel

MAX_ITERATIONS: Final = 10_000  # loop passes + range() items + calls, per render
MAX_SECONDS: Final = 1.0  # per render
MAX_OUTPUT: Final = 100_000  # characters rendered; also the longest string or list built
MAX_DIGITS: Final = 4_000  # Python refuses to print ints past 4,300 digits anyway
MAX_CACHED: Final = 4_096  # compiled templates kept per worker

_LOOP: Final = "tripwire_loop"
_SIZED: Final = "tripwire_sized"
_LOG10_2: Final = math.log10(2)


class Limit(Exception):
    """A sandbox limit was reached; the message says which one and what to do instead."""


# --- the iteration budget and the clock -------------------------------------------------


@dataclass
class Budget:
    seconds: float
    left: int = MAX_ITERATIONS
    deadline: float = math.inf

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds


BUDGET: ContextVar[Budget | None] = ContextVar("tripwire_template_budget", default=None)


def _charge(n: int) -> None:
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


def _range(*args: int) -> range:
    items = range(*args)
    try:
        _charge(len(items))
    except OverflowError:  # longer than sys.maxsize
        _charge(sys.maxsize)
    return items


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` iterates through this, so nested loops over event data are paid."""
    for item in iterable:
        _charge(1)
        yield item


# --- sizes, checked before a value is built where that can be known -------------------


def _check_size(size: int, what: str) -> None:
    if size > MAX_OUTPUT:
        raise Limit(
            f"{what} is {size:,} characters or items long; at most {MAX_OUTPUT:,} are "
            "allowed: build smaller strings and lists"
        )


def _check_digits(digits: float, what: str) -> None:
    if digits > MAX_DIGITS:
        shown = "too many" if math.isinf(digits) else f"about {int(digits):,}"
        raise Limit(
            f"{what} would be a number of {shown} digits; at most {MAX_DIGITS:,} are "
            "allowed: use smaller numbers"
        )


def _weight(value: Any, limit: int = MAX_OUTPUT) -> int:
    """About how many characters `str(value)` takes, counting a shared value each time it
    appears (that is how `[big] * n` blows up); stops counting once past `limit`."""
    stack, total, seen = [value], 0, 0
    while stack and total <= limit:
        item = stack.pop()
        seen += 1
        if seen % 4096 == 0:
            _charge(0)  # the clock
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


def _sized(value: Any) -> Any:
    """Wraps literals, `~` and `{% set %}` blocks: what was just built is not too big."""
    _check_size(_weight(value), "a value the template built")
    return value


def _check_mul(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int) and times > 0:
            _check_size(_weight(seq) * times, "the result of '*'")
    if isinstance(left, int) and isinstance(right, int):
        _check_digits((left.bit_length() + right.bit_length()) * _LOG10_2, "the result of '*'")


def _check_pow(base: Any, exp: Any) -> None:
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1:
        digits = math.inf if exp > 10**9 else exp * math.log10(abs(base))
        _check_digits(digits, "the result of '**'")


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?([^a-zA-Z%]*)")


def _check_spec(spec: str, what: str) -> None:
    if "*" in spec or "{" in spec:
        raise Limit(f"{what} has a computed width, which is not allowed; write it as a number")
    for number in re.findall(r"\d+", spec):
        _check_size(int(number), f"the width in {what}")


def _check_printf(fmt: str, what: str = "a % format") -> None:
    for spec in _PRINTF_SPEC.findall(fmt):
        _check_spec(spec, what)


def _check_replace(text: str, old: str, new: str, count: int, what: str) -> None:
    hits = text.count(old) if old else len(text) + 1
    if count >= 0:
        hits = min(hits, count)
    _check_size(len(text) + hits * len(new), what)


def _check_join(sep: str, items: list[Any], what: str) -> None:
    total = len(sep) * max(len(items) - 1, 0)
    for item in items:
        if total > MAX_OUTPUT:
            break
        total += _weight(item)
    _check_size(total, what)


_WIDTH_METHODS: Final = frozenset({"center", "ljust", "rjust", "zfill"})


def _check_str_call(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    what = f"the result of str.{name}()"
    if name in _WIDTH_METHODS and args and isinstance(args[0], int):
        _check_size(args[0], what)
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            _check_size(len(text) + text.count("\t") * size, what)
    elif name == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        _check_replace(text, str(args[0]), str(args[1]), int(count), what)
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((_weight(v) for v in args[0].values()), default=1)
        _check_size(len(text) * longest, what)


# --- filters: sizes checked before building, every text result after --------------------


@pass_eval_context
def _replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
    what = "the result of the replace filter"
    _check_replace(str(s), str(old), str(new), -1 if count is None else count, what)
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)


def _indentation(value: Any, pad: int, limit: int = MAX_OUTPUT) -> int:
    """The characters `json.dumps(value, indent=pad)` adds: a line per item, indented by
    its depth; stops counting once past `limit`."""
    stack, total = [(value, 0)], 0
    while stack and total <= limit:
        item, depth = stack.pop()
        items = item.values() if isinstance(item, Mapping) else item
        if isinstance(item, Mapping | list | tuple):
            total += (depth + 1) * pad * len(items) + depth * pad + len(items) + 1
            stack.extend((child, depth + 1) for child in items)
    return total


@pass_eval_context
def _tojson(eval_ctx: EvalContext, value: Any, indent: int | str | None = None) -> Any:
    # json.dumps builds the indent string, then the whole text, before the result is
    # checked, and a deep value multiplies the indent: 5 GB and minutes for
    # `[1, [2]] | tojson(indent=999999999)`.
    pad = len(indent) if isinstance(indent, str) else int(indent or 0)
    if pad:
        size = pad + _weight(value) + _indentation(value, pad)
        _check_size(size, "the result of the tojson filter")
    return jinja_filters.do_tojson(eval_ctx, value, indent)  # type: ignore[arg-type]


def _center(value: str, width: int = 80) -> str:
    _check_size(width, "the result of the center filter")
    return jinja_filters.do_center(value, width)


def _indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(s)
    pad = width if isinstance(width, int) else len(width)
    _check_size(len(text) + (text.count("\n") + 1) * pad, "the result of the indent filter")
    return jinja_filters.do_indent(s, width, first, blank)


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_printf(str(value), "the format filter")
    return jinja_filters.do_format(value, *args, **kwargs)


def _batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    _check_size(linecount * (1 + _weight(fill_with)), "a batch of the batch filter")
    return jinja_filters.do_batch(value, linecount, fill_with)


def _slice(value: Collection[Any], slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    _check_size(slices * (1 + _weight(fill_with)), "the result of the slice filter")
    return jinja_filters.sync_do_slice(value, slices, fill_with)


@pass_eval_context
def _join(
    eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    items = list(value)
    if attribute is not None:
        items = list(map(jinja_filters.make_attrgetter(eval_ctx.environment, attribute), items))
    _check_join(str(d), items, "the result of the join filter")
    return jinja_filters.sync_do_join(eval_ctx, items, d)


_FILTERS: Final[dict[str, Callable[..., Any]]] = {
    "batch": _batch,
    "center": _center,
    "format": _format,
    "indent": _indent,
    "join": _join,
    "replace": _replace,
    "slice": _slice,
    "tojson": _tojson,
    _LOOP: _loop,
    _SIZED: _sized,
}


def _text_checked(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` whose text results are checked (tojson|tojson|... grows each time)."""

    @wraps(func)  # keeps Jinja's pass_eval_context/pass_environment marker
    def checked(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        if isinstance(result, str):
            _check_size(len(result), f"the result of the {name} filter")
        return result

    return checked


def _filter(node: nodes.Node | None, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None)


class Guard(NodeTransformer):
    """Routes loops through the budget and sizes what literals, `~` and blocks build."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _filter(node.iter, _LOOP)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filter(node, _SIZED)

    visit_List = visit_Dict = visit_Concat

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return _filter(node, _SIZED) if node.ctx == "load" else node

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        self.generic_visit(node)
        node.filter = _filter(node.filter, _SIZED)  # None: the block's text
        return node


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with StrictUndefined and the size and budget checks."""

    # Intercepted operators are also never folded at compile time, so a constant
    # `'x' * 10**9` is refused when rendered instead of being built while compiling.
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False)
        self.filters.update(_FILTERS)
        self.filters = {name: _text_checked(name, f) for name, f in self.filters.items()}
        self.globals["range"] = _range
        del self.globals["lipsum"]  # lipsum(n=10**9) would spin

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Check the size of the value an operator would build, before it is built."""
        if operator == "*":
            _check_mul(left, right)
        elif operator == "**":
            _check_pow(left, right)
        elif operator == "+" and isinstance(left, str | list | tuple):
            if isinstance(right, str | list | tuple):
                _check_size(_weight(left) + _weight(right), "the result of '+'")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
        return super().call_binop(context, operator, left, right)

    # Dunder names, as in Jinja: a template may pass keywords named self, context or obj.
    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Charge the call; size its arguments and text result (what recursion carries)."""
        _charge(1)
        name = getattr(__obj, "__name__", "a function")
        for arg in (*args, *kwargs.values()):
            _check_size(_weight(arg), f"an argument of {name}()")
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            if name == "join" and args:
                items = list(args[0])
                _check_join(owner, items, "the result of str.join()")
                args = (items, *args[1:])
            else:
                _check_str_call(owner, name, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str):
            _check_size(len(result), f"the result of {name}()")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format and format_map: no width past MAX_OUTPUT, no computed widths."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            for _, name, spec, _ in string.Formatter().parse(value.__self__):
                if name is not None and spec:
                    _check_spec(spec, "a str.format spec")
        return wrapped


def check_output(size: int) -> None:
    if size > MAX_OUTPUT:
        raise Limit(
            f"the rendered text is longer than {MAX_OUTPUT:,} characters; render less "
            "(e.g. |truncate(1000) or a slice like items[:20]) and link to the details"
        )
