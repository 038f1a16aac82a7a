"""`tripwire test`: replay recorded events through automation files, no engine needed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.support import FIXTURES
from tripwire.cli import app

runner = CliRunner()
EVENTS = str(FIXTURES / "flow-run-events.jsonl")
SALES = str(FIXTURES / "sales-refresh-expected-hourly.yaml")
ORDERS = str(FIXTURES / "etl-orders-keeps-failing.yaml")


def test_nothing_fires_within_the_recording() -> None:
    result = runner.invoke(app, ["test", "-f", SALES, "-f", ORDERS, "--events", EVENTS])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(
        "19 events replayed: 0 firing(s) of 0 automation(s); nothing would have fired "
        "(`tripwire explain` shows why on a live engine)"
    )


def test_running_the_clock_on_fires_the_proactive_export() -> None:
    result = runner.invoke(
        app, ["test", "-f", SALES, "--events", EVENTS, "--until", "2h", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (firing,) = report["firings"]
    assert firing["automation"] == "sales-refresh-expected-hourly"
    assert firing["at"].startswith("2026-11-21T10:42:56")
    assert firing["event"] == "prefect.flow-run.Completed"


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    recorded = tmp_path / "events.jsonl"
    lines = (FIXTURES / "flow-run-events.jsonl").read_text().splitlines()
    recorded.write_text("\n".join([lines[0], '{"event": "x.y"}', lines[1]]) + "\n")
    result = runner.invoke(app, ["test", "-f", SALES, "--events", str(recorded)])
    assert result.exit_code == 1
    assert f"{recorded}:line 2: " in result.stderr
    assert "resource" in result.stderr


def test_events_and_from_store_are_exclusive() -> None:
    result = runner.invoke(app, ["test", "-f", SALES])
    assert result.exit_code == 1
    assert "--events FILE, or --from-store" in result.stderr


def test_plain_events_without_received_replay(tmp_path: Path) -> None:
    recorded = tmp_path / "events.json"
    recorded.write_text(
        json.dumps(
            [
                {
                    "occurred": f"2026-11-21T09:0{i}:00Z",
                    "event": "prefect.flow-run.Failed",
                    "resource": {"prefect.resource.id": "prefect.flow-run.r1"},
                    "related": [
                        {
                            "prefect.resource.id": "prefect.flow.x",
                            "prefect.resource.role": "flow",
                            "prefect.resource.name": "etl-orders",
                        }
                    ],
                }
                for i in range(3)
            ]
        )
    )
    result = runner.invoke(app, ["test", "-f", ORDERS, "--events", str(recorded)])
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("2026-11-21 09:02:00  etl-orders-keeps-failing  triggered  3 of 3")
