"""The environment templates render in: Jinja's immutable sandbox with StrictUndefined,
the size-checked filters, the charged range(), and operators and calls checked before
they build."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

from jinja2 import StrictUndefined
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from events.sandbox.budget import charge, charged_range
from events.sandbox.filters import FILTERS, text_checked
from events.sandbox.guard import GUARD_FILTERS
from events.sandbox.sizes import (
    check_join,
    check_mul,
    check_pow,
    check_printf,
    check_size,
    check_spec,
    check_str_call,
    weight,
)


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with StrictUndefined and the size and budget checks."""

    # Intercepted operators are also never folded at compile time, so a constant
    # `'x' * 10**9` is refused when rendered instead of being built while compiling.
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False)
        self.filters.update(FILTERS)
        self.filters.update(GUARD_FILTERS)
        self.filters = {name: text_checked(name, f) for name, f in self.filters.items()}
        self.globals["range"] = charged_range
        del self.globals["lipsum"]  # lipsum(n=10**9) would spin

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Check the size of the value an operator would build, before it is built."""
        if operator == "*":
            check_mul(left, right)
        elif operator == "**":
            check_pow(left, right)
        elif operator == "+" and isinstance(left, str | list | tuple):
            if isinstance(right, str | list | tuple):
                check_size(weight(left) + weight(right), "the result of '+'")
        elif operator == "%" and isinstance(left, str):
            check_printf(left)
        return super().call_binop(context, operator, left, right)

    # Dunder names, as in Jinja: a template may pass keywords named self, context or obj.
    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Charge the call; size its arguments and text result (what recursion carries)."""
        charge(1)
        name = getattr(__obj, "__name__", "a function")
        for arg in (*args, *kwargs.values()):
            check_size(weight(arg), f"an argument of {name}()")
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            if name == "join" and args:
                items = list(args[0])
                check_join(owner, items, "the result of str.join()")
                args = (items, *args[1:])
            else:
                check_str_call(owner, name, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str):
            check_size(len(result), f"the result of {name}()")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format and format_map: no width past MAX_OUTPUT, no computed widths."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            for _, name, spec, _ in string.Formatter().parse(value.__self__):
                if name is not None and spec:
                    check_spec(spec, "a str.format spec")
        return wrapped
