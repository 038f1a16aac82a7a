"""The guard: a rewrite of each compiled template that routes `{% for %}` loops through
the work budget and weighs what literals, `~` and `{% set %}` blocks build, by inserting
calls of two filters of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from jinja2 import nodes
from jinja2.visitor import NodeTransformer

from events.sandbox.budget import charged_loop
from events.sandbox.sizes import sized

LOOP: Final = "tripwire_loop"
SIZED: Final = "tripwire_sized"

# The filters the guard's rewrites call; the sandbox registers them.
GUARD_FILTERS: Final[dict[str, Callable[..., Any]]] = {LOOP: charged_loop, SIZED: sized}


def _filter(node: nodes.Node | None, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None)


class Guard(NodeTransformer):
    """Routes loops through the budget and sizes what literals, `~` and blocks build."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _filter(node.iter, LOOP)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filter(node, SIZED)

    visit_List = visit_Dict = visit_Concat

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return _filter(node, SIZED) if node.ctx == "load" else node

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        self.generic_visit(node)
        node.filter = _filter(node.filter, SIZED)  # None: the block's text
        return node
