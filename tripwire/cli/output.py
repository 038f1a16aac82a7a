"""How the CLI prints: one-line failures, tables, times, counts, URLs without passwords."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import NoReturn

import typer

# Table width when the output is a pipe or a file: whole values for scripts, never wrapped
# at the 80 columns rich assumes without a terminal.
_PIPE_WIDTH = 100_000
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a clear one-line error and exit (never a traceback)."""
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def when(value: datetime | str | None, *, millis: bool = False) -> str:
    """A time (or the engine's ISO 8601 text of one) as UTC `2026-11-23 09:05:00`, with
    `.250` when `millis`; `-` for none. Every time the CLI prints for people goes through here."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)  # not a time after all: shown as the engine gave it
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}" if millis else text


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Rows in columns two spaces apart under a bold header; in a narrow terminal, long cells
    wrap within their column."""
    # rich is imported here, not at the top: only the listing commands draw tables.
    from rich.console import Console
    from rich.table import Table

    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in header:
        # Folded, never cut short: an id or a name is copied from here.
        grid.add_column(name, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    # Cells are data: "[prod]" or ":x:" in a name must print as written.
    console = Console(
        markup=False,
        emoji=False,
        highlight=False,
        width=None if sys.stdout.isatty() else _PIPE_WIDTH,
    )
    with console.capture() as captured:
        console.print(grid)
    for line in captured.get().splitlines():
        typer.echo(line.rstrip())


def plural(count: int, noun: str) -> str:
    """`1 trigger`, `2 triggers`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def redact_url(value: str) -> str:
    """URLs with any password masked (postgresql://app:********@db/tripwire); several
    comma-separated URLs alike."""
    return _URL_PASSWORD.sub(r"\1********@", value)
