"""How the CLI prints times and tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import typer
from typer.testing import CliRunner

from tripwire.cli.output import table, when


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-11-23T09:05:00.250000+00:00", "2026-11-23 09:05:00"),
        ("2026-11-23T09:05:00Z", "2026-11-23 09:05:00"),
        ("2026-11-23T10:05:00+01:00", "2026-11-23 09:05:00"),  # shown in UTC
        (datetime(2026, 11, 23, 9, 5, tzinfo=timezone(timedelta(hours=-5))), "2026-11-23 14:05:00"),
        (None, "-"),
        ("", "-"),
        ("soon", "soon"),  # not a time: as given
    ],
)
def test_times_print_one_way(value: str | datetime | None, shown: str) -> None:
    assert when(value) == shown


def test_milliseconds_when_asked() -> None:
    assert when("2026-11-23T09:05:00.250000+00:00", millis=True) == "2026-11-23 09:05:00.250"
    assert when(datetime(2026, 11, 23, 9, 5, tzinfo=UTC), millis=True) == "2026-11-23 09:05:00.000"


def test_tables_keep_whole_values_in_a_pipe() -> None:
    """Long cells are neither wrapped nor cut at 80 columns, cells print as written (no rich
    markup), and lines carry no trailing blanks."""
    long = "x" * 150
    app = typer.Typer()

    @app.command()
    def show() -> None:
        table(("NAME", "NOTE"), [("[prod] orders :fire:", long), ("b", "short")])

    out = CliRunner().invoke(app).stdout
    assert out.splitlines() == [
        "NAME                  NOTE",
        f"[prod] orders :fire:  {long}",
        "b                     short",
    ]
