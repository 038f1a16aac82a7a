"""The CLI reference, from the command tree itself (the command typer builds): every
command, its arguments and options with their help. Typer carries its own copy of click,
so the tree is read through typer's public names (`typer.Context`, `typer.core`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup

from .schema import cell

INTRO = """\
# CLI

`tripwire` runs the engine (`up`, `serve ...`) and talks to a running one. Commands that
talk to an engine find it through `--api URL`, else `TRIPWIRE_API_URL` or `TRIPWIRE_URL`,
else `TRIPWIRE_HOST` and `TRIPWIRE_PORT`, and send `TRIPWIRE_API_KEY` or
`TRIPWIRE_API_AUTH_STRING` when set. `tripwire COMMAND --help` prints the same as this
page.

This page is generated from the command tree.
"""


def page(app: typer.Typer) -> str:
    """The whole page as Markdown."""
    root = typer.main.get_command(app)
    context = typer.Context(root, info_name="tripwire")
    return INTRO + "\n".join(_command(root, context, depth=0)) + "\n"


def _command(command: Any, context: typer.Context, depth: int) -> Iterator[str]:
    if depth:
        yield ""
        yield f"{'#' * min(depth + 1, 4)} `{context.command_path}`"
        yield ""
        if command.help:
            yield command.help.strip()
            yield ""
    if isinstance(command, TyperGroup):
        children = {
            name: child
            for name in command.list_commands(context)
            if (child := command.get_command(context, name)) is not None and not child.hidden
        }
        if depth:
            yield "| command | what |"
            yield "|---|---|"
            for name, child in children.items():
                yield f"| `{name}` | {cell(child.get_short_help_str(limit=120))} |"
        for name, child in children.items():
            yield from _command(
                child, typer.Context(child, info_name=name, parent=context), depth + 1
            )
        return
    usage = " ".join(command.collect_usage_pieces(context))
    yield "```text"
    yield f"{context.command_path} {usage}".rstrip()
    yield "```"
    yield ""
    records = [record for param in command.params if (record := param.get_help_record(context))]
    if records:
        yield "| argument or option | what |"
        yield "|---|---|"
        for names, help_text in records:
            yield f"| `{cell(names)}` | {cell(help_text)} |"
