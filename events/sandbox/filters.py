"""Jinja's filters that can build big values, replaced by ones that check the size first;
and `text_checked`, which checks the text result of any filter after."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from functools import wraps
from typing import Any, Final

from jinja2 import filters as jinja_filters
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext

from events.sandbox.limits import MAX_OUTPUT
from events.sandbox.sizes import check_join, check_printf, check_replace, check_size, weight


@pass_eval_context
def _replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
    what = "the result of the replace filter"
    check_replace(str(s), str(old), str(new), -1 if count is None else count, what)
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
        size = pad + weight(value) + _indentation(value, pad)
        check_size(size, "the result of the tojson filter")
    return jinja_filters.do_tojson(eval_ctx, value, indent)  # type: ignore[arg-type]


def _center(value: str, width: int = 80) -> str:
    check_size(width, "the result of the center filter")
    return jinja_filters.do_center(value, width)


def _indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(s)
    pad = width if isinstance(width, int) else len(width)
    check_size(len(text) + (text.count("\n") + 1) * pad, "the result of the indent filter")
    return jinja_filters.do_indent(s, width, first, blank)


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    check_printf(str(value), "the format filter")
    return jinja_filters.do_format(value, *args, **kwargs)


def _batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    check_size(linecount * (1 + weight(fill_with)), "a batch of the batch filter")
    return jinja_filters.do_batch(value, linecount, fill_with)


def _slice(value: Collection[Any], slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    check_size(slices * (1 + weight(fill_with)), "the result of the slice filter")
    return jinja_filters.sync_do_slice(value, slices, fill_with)


@pass_eval_context
def _join(
    eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    items = list(value)
    if attribute is not None:
        items = list(map(jinja_filters.make_attrgetter(eval_ctx.environment, attribute), items))
    check_join(str(d), items, "the result of the join filter")
    return jinja_filters.sync_do_join(eval_ctx, items, d)


FILTERS: Final[dict[str, Callable[..., Any]]] = {
    "batch": _batch,
    "center": _center,
    "format": _format,
    "indent": _indent,
    "join": _join,
    "replace": _replace,
    "slice": _slice,
    "tojson": _tojson,
}


def text_checked(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` whose text results are checked (tojson|tojson|... grows each time)."""

    @wraps(func)  # keeps Jinja's pass_eval_context/pass_environment marker
    def checked(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        if isinstance(result, str):
            check_size(len(result), f"the result of the {name} filter")
        return result

    return checked
