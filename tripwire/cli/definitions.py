"""Definition files on the command line: loading them with every error reported, and
`tripwire validate`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tripwire.cli.output import fail, plural

if TYPE_CHECKING:
    from tripwire.definitions import Definitions

commands = typer.Typer()


def summary(definitions: Definitions) -> str:
    """What the files define: `4 automations, 2 SLAs in 2 file(s)` (automations always)."""
    from tripwire.definitions import SECTIONS

    counts = [
        plural(len(definitions.of(s.name)), s.noun)
        for s in sorted(SECTIONS, key=lambda s: not s.default)
        if s.default or definitions.of(s.name)
    ]
    return f"{', '.join(counts)} in {len(definitions.files)} file(s)"


def load_definitions(files: list[Path], consequence: str) -> Definitions:
    """Everything the files define; else every error printed (file:line: field) and the
    command ends, saying the `consequence` ("nothing was applied")."""
    # Imported here: the loader checks definitions with every package's models.
    from tripwire.definitions import load_paths

    missing = [str(f) for f in files if not f.exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}")
    definitions = load_paths(files)
    for error in definitions.errors:
        typer.echo(str(error), err=True)
    if definitions.errors:
        then = f"; {consequence}" if consequence else ""
        fail(f"{len(definitions.errors)} problem(s); {summary(definitions)} loaded{then}")
    return definitions


@commands.command()
def validate(
    files: list[Path] = typer.Option(..., "--file", "-f", help="A file or folder (repeatable)."),
) -> None:
    """Check automation (connection and SLA) files; report every error with file, line and
    field."""
    typer.echo(f"ok: {summary(load_definitions(files, ''))}")
