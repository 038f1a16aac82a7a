"""`tripwire apply`, `automations ...` and `explain` against a running engine."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from events.embedded import free_port
from tests.support import FIXTURES, Running, eventually
from tests.tripwire.test_up import wait_healthy
from tripwire.cli import app
from tripwire.definitions import load_text

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ORDERS = str(FIXTURES / "etl-orders-keeps-failing.yaml")
SALES = str(FIXTURES / "sales-refresh-expected-hourly.yaml")


async def invoke(*args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_apply_twice_reports_created_then_unchanged(engine: Running) -> None:
    code, out, err = await invoke("apply", "-f", ORDERS, "-f", SALES, "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == [
        "created etl-orders-keeps-failing",
        "created sales-refresh-expected-hourly",
    ]
    code, out, _ = await invoke("apply", "-f", ORDERS, "-f", SALES, "--api", engine.url)
    assert code == 0
    assert out.splitlines() == [
        "unchanged etl-orders-keeps-failing",
        "unchanged sales-refresh-expected-hourly",
    ]


@pytest.fixture
def stricter(tmp_path: Path) -> Path:
    """The orders export with threshold 5 instead of 3."""
    text = Path(ORDERS).read_text()
    assert "    threshold: 3\n" in text
    path = tmp_path / "orders.yaml"
    path.write_text(text.replace("    threshold: 3\n", "    threshold: 5\n"))
    return path


async def test_apply_dry_run_update_and_prune(
    engine: Running, stricter: Path, tmp_path: Path
) -> None:
    await invoke("apply", "-f", ORDERS, "-f", SALES, "--api", engine.url)
    code, out, _ = await invoke(
        "apply", "-f", str(stricter), "--prune", "--dry-run", "--api", engine.url
    )
    assert code == 0
    assert out.splitlines() == [
        "would update etl-orders-keeps-failing (resets state of 1 trigger, 0 open windows)",
        "would delete sales-refresh-expected-hourly",
        "dry run: nothing was changed",
    ]
    code, out, _ = await invoke("apply", "-f", ORDERS, "-f", SALES, "--api", engine.url)
    assert "created" not in out  # the dry run deleted nothing
    assert "updated" not in out

    code, out, _ = await invoke("apply", "-f", str(stricter), "--prune", "--api", engine.url)
    assert code == 0
    assert out.splitlines() == [
        "updated etl-orders-keeps-failing (resets state of 1 trigger, 0 open windows)",
        "deleted sales-refresh-expected-hourly",
    ]
    code, _, err = await invoke("apply", "-f", str(tmp_path / "none"), "--api", engine.url)
    assert code == 1
    assert "no such file or folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = await invoke(
        "apply", "-f", str(tmp_path / "empty"), "--prune", "--api", engine.url
    )
    assert code == 1
    assert "--prune would delete every automation" in err


async def test_apply_reports_every_definition_error_and_applies_nothing(
    engine: Running, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "automations:\n"
        "  - name: typo\n"
        "    trigger:\n"
        "      type: event\n"
        "      expects: [x]\n"
        "  - name: slack-without-url\n"
        "    trigger: {type: event}\n"
        "    actions:\n"
        "      - type: send-slack\n"
    )
    code, out, err = await invoke("apply", "-f", str(bad), "-f", ORDERS, "--api", engine.url)
    assert code == 1
    assert out == ""
    assert f"{bad}:5: trigger.expects: is not a known field" in err
    assert f"{bad}:9: actions[0]: 'webhook_url' is required" in err
    assert "2 problem(s)" in err
    assert "nothing was applied" in err
    code, out, _ = await invoke("automations", "ls", "--api", engine.url)
    assert "no automations yet" in out


async def test_examples_validate_and_apply(engine: Running) -> None:
    code, out, _ = await invoke("validate", "-f", str(EXAMPLES))
    assert code == 0
    assert "ok: 5 automations, 2 SLAs, 1 silence, 1 inhibition rule in 3 file(s)" in out
    code, out, err = await invoke("apply", "-f", str(EXAMPLES), "--api", engine.url)
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()] == ["created"] * 9


async def state_of(name: str, engine: Running) -> str:
    """The STATE column of `automations ls` for one automation."""
    _, out, _ = await invoke("automations", "ls", "--api", engine.url)
    return next(row.split()[1] for row in out.splitlines() if row.split()[0] == name)


async def test_ls_inspect_pause_resume_delete(engine: Running) -> None:
    await invoke("apply", "-f", ORDERS, "-f", str(EXAMPLES), "--api", engine.url)
    code, out, _ = await invoke("automations", "ls", "--api", engine.url)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "STATE", "TRIGGER", "ACTIONS", "ID"]
    table = {row.split()[0]: row for row in rows}
    assert "etl-orders-keeps-failing" in table
    assert table["etl-orders-keeps-failing"].split()[1:] == [
        "enabled",
        "event",
        "3",
        "45c5cbb5-cd87-49dd-b1d5-d4119272f831",
    ]
    assert "event, proactive" in table["etl-run-not-completed"]
    assert " compound " in table["nightly-etls-done"]
    assert " sequence " in table["sales-model-refreshed-after-etl"]

    code, out, _ = await invoke(
        "automations", "pause", "etl-orders-keeps-failing", "--api", engine.url
    )
    assert (code, out) == (0, "paused etl-orders-keeps-failing\n")
    assert (await state_of("etl-orders-keeps-failing", engine)) == "paused"
    code, out, _ = await invoke(
        "automations", "resume", "etl-orders-keeps-failing", "--api", engine.url
    )
    assert (code, out) == (0, "resumed etl-orders-keeps-failing\n")
    assert (await state_of("etl-orders-keeps-failing", engine)) == "enabled"

    # inspect prints a definition that apply takes back unchanged
    code, out, _ = await invoke(
        "automations", "inspect", "etl-orders-keeps-failing", "--api", engine.url
    )
    assert code == 0
    definition = yaml.safe_load(out)
    assert definition["id"] == "45c5cbb5-cd87-49dd-b1d5-d4119272f831"
    assert "created" not in definition
    assert load_text(out, "inspected.yaml").ok
    code, as_json, _ = await invoke(
        "automations", "inspect", "etl-orders-keeps-failing", "-o", "json", "--api", engine.url
    )
    assert json.loads(as_json) == definition

    code, _, err = await invoke(
        "automations", "delete", "etl-orders-keeps-failing", "--api", engine.url
    )
    assert code == 1
    assert "pass --yes" in err
    code, out, _ = await invoke(
        "automations", "delete", "etl-orders-keeps-failing", "--yes", "--api", engine.url
    )
    assert (code, out) == (0, "deleted etl-orders-keeps-failing\n")
    code, _, err = await invoke(
        "automations", "inspect", "etl-orders-keeps-failing", "--api", engine.url
    )
    assert code == 1
    assert "no automation is named or has the id 'etl-orders-keeps-failing'" in err
    assert "Traceback" not in err


async def test_inspected_yaml_applies_back_unchanged(engine: Running, tmp_path: Path) -> None:
    await invoke("apply", "-f", str(EXAMPLES), "--api", engine.url)
    _, out, _ = await invoke("automations", "inspect", "nightly-etls-done", "--api", engine.url)
    (tmp_path / "nightly.yaml").write_text(out)
    code, out, _ = await invoke("apply", "-f", str(tmp_path / "nightly.yaml"), "--api", engine.url)
    assert (code, out) == (0, "unchanged nightly-etls-done\n")


async def test_explain_says_why_and_hints_when_nothing_was_decided(engine: Running) -> None:
    await invoke("apply", "-f", ORDERS, "--api", engine.url)
    code, out, _ = await invoke("explain", "etl-orders-keeps-failing", "--api", engine.url)
    assert code == 0
    assert out.startswith("no decisions recorded for etl-orders-keeps-failing")
    assert "expect: prefect.flow-run.Failed?" in out
    assert "is a worker running" in out

    event = {
        "event": "prefect.flow-run.Failed",
        "resource": {"prefect.resource.id": "prefect.flow-run.explained"},
        "related": [
            {
                "prefect.resource.id": "prefect.flow.orders",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "etl-orders",
            }
        ],
    }
    async with engine.client() as http:
        [event_id] = (await http.post("/api/events", json=event)).json()["accepted"]

    async def explained() -> str:  # the worker decides shortly after the event is stored
        _, out, _ = await invoke(
            "explain", "etl-orders-keeps-failing", "--event", event_id, "--api", engine.url
        )
        return out if f"counted    prefect.flow-run.Failed {event_id}" in out else ""

    out = await eventually(explained, 10, "the decision on the event")
    [line] = out.splitlines()
    assert f"counted    prefect.flow-run.Failed {event_id}  1 of 3 events" in line

    other = "01a1fd7c-0000-7000-8000-000000000000"
    code, out, _ = await invoke(
        "explain", "etl-orders-keeps-failing", "--event", other, "--api", engine.url
    )
    assert f"no decisions recorded for etl-orders-keeps-failing about event {other}" in out
    assert f"event {other} is not stored (yet)" in out


async def test_unreachable_engine_and_unknown_names_are_one_line(engine: Running) -> None:
    for args in (
        ("automations", "ls"),
        ("apply", "-f", ORDERS),
        ("explain", "anything"),
        ("automations", "pause", "anything"),
    ):
        code, _, err = await invoke(*args, "--api", "http://127.0.0.1:9")
        assert code == 1, args
        assert err.startswith("error: cannot reach tripwire at http://127.0.0.1:9")
        assert "is it running" in err
        assert len(err.strip().splitlines()) == 1
    code, _, err = await invoke("explain", "nope", "--api", engine.url)
    assert code == 1
    assert err.startswith("error: no automation is named or has the id 'nope'")
    code, _, err = await invoke("automations", "inspect", "x", "-o", "toml", "--api", engine.url)
    assert code == 1
    assert "use yaml or json" in err


async def test_auth_errors_are_clear(start_engine, monkeypatch) -> None:
    running = await start_engine(api_key="k3y")
    code, _, err = await invoke("automations", "ls", "--api", running.url)
    assert code == 1
    assert "TRIPWIRE_API_KEY" in err
    monkeypatch.setenv("TRIPWIRE_API_KEY", "k3y")
    code, out, _ = await invoke("automations", "ls", "--api", running.url)
    assert code == 0
    assert "no automations yet" in out


def run_up(home: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPWIRE_")}
    command = ["up", "--home", str(home), "--port", str(port), *args]
    return subprocess.Popen(
        [sys.executable, "-m", "tripwire.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


def test_up_applies_automations_at_start(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = run_up(tmp_path / "data", port, "--automations", str(EXAMPLES))
    try:
        wait_healthy(url, process)
        listed = httpx.get(url + "/api/automations/").json()
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert [a["name"] for a in listed] == [
        "any-flow-failed",
        "etl-flow-keeps-failing",
        "etl-run-not-completed",
        "nightly-etls-done",
        "sales-model-refreshed-after-etl",
    ]
    assert "automations  5 applied at start" in output
    assert "silences     1 maintenance windows (tripwire silence ls)" in output


def test_up_with_bad_automations_does_not_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("automations:\n  - name: x\n    trigger: {type: event, within: -1}\n")
    process = run_up(tmp_path / "data", free_port(), "--automations", str(bad))
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 1
    assert f"{bad}:3: trigger.within: must not be negative" in output
    assert "the engine was not started" in output
    assert "Traceback" not in output
