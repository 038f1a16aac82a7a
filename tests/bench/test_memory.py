"""`bench memory`: its automations, and a whole run at a tiny size (real nats-server, api,
worker and sla processes), so that the benchmark cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import orjson
import pytest

from bench import memory
from tests.support import POSTGRES_URL, ROOT
from triggers.automation import Automation
from triggers.model import EventTrigger

AUTOMATIONS = 50
WINDOWS = 2000
PHASES = {"started", "automations", "windows", "restarted"}
READING = {"rss_mb", "peak_rss_mb", "anon_mb", "file_mb"}


def test_the_automations_are_valid_and_each_key_opens_one_window_of_one() -> None:
    triggers = [Automation.model_validate(memory.automation(i)).trigger for i in range(8)]

    assert all(isinstance(t, EventTrigger) and t.for_each for t in triggers)
    assert [getattr(t, "posture", None) for t in triggers[:2]] == ["Reactive", "Proactive"]
    for key in range(16):
        event = orjson.loads(memory.event(key, 8))
        trigger = memory.automation(key % 8)["trigger"]
        assert event["resource"]["prefect.resource.id"].startswith(f"bench.memory.{key % 8}.")
        assert event["event"] in trigger.get("after", []) + trigger["expect"]


def _run(*options: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.memory", "--automations", str(AUTOMATIONS)]
    command += ["--windows", str(WINDOWS), *options]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=110)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def _check(result: dict[str, Any], database: str) -> None:
    assert result["benchmark"] == "memory"
    assert result["parameters"]["automations"] == AUTOMATIONS
    assert result["parameters"]["database"] == database
    assert result["windows"] == {
        "expected": WINDOWS,
        "rows": WINDOWS,
        "proactive": WINDOWS // 2,
        "rows_after_restart": WINDOWS,
    }
    assert result["load"]["accepted"] == WINDOWS
    assert set(result["worker_rss_mb"]) == PHASES
    for reading in result["worker_rss_mb"].values():
        assert set(reading) >= READING
        assert 0 < reading["rss_mb"] <= reading["peak_rss_mb"]
    assert set(result["other_rss_mb"]["windows"]) == {"api", "sla", "nats"}
    assert result["nats_rss_mb"]["rss_mb"] > 0
    assert result["target_mb"] == 500
    assert result["worker_peak_rss_mb"] == max(
        r["peak_rss_mb"] for r in result["worker_rss_mb"].values()
    )
    assert result["met"] is (result["worker_peak_rss_mb"] <= 500)


@pytest.mark.slow
def test_a_tiny_run_on_sqlite_opens_every_window() -> None:
    _check(_run(), "sqlite")


@pytest.mark.slow
@pytest.mark.postgres
def test_a_tiny_run_on_postgresql_opens_every_window() -> None:
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("TRIPWIRE_TEST_POSTGRES_URL must be set in CI")
        pytest.skip("TRIPWIRE_TEST_POSTGRES_URL is not set")
    _check(_run("--postgres", POSTGRES_URL), "postgresql")
