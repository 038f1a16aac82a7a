"""Impact: a real Prefect server runs a flow with assets; tripwire follows its asset
events, learns the lineage, and when the sales table's freshness SLA is missed the alert
names what is downstream, from the lineage and the SLA's own `downstream:` list."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from events import clock
from tests.actions.test_live import named
from tests.alerts.test_live import alerts
from tests.events.prefect_follow_server import PYTHON, SCRIPTS, RestartablePrefect, prefect_env
from tests.events.test_follower import FAST, follower, wait_for_state
from tests.support import StartEngine
from tests.triggers.test_live import stored
from tests.tripwire.test_cli_automations import invoke

pytestmark = [pytest.mark.prefect, pytest.mark.slow, pytest.mark.timeout(180)]

SALES_FRESH: dict[str, Any] = {
    "name": "sales-table-hourly",
    "kind": "freshness",
    "severity": "critical",
    "expect": ["prefect.asset.materialization.succeeded"],
    "match": {"prefect.resource.id": "warehouse://sales-table"},
    "for_each": ["prefect.resource.id"],
    "every": "1h",
    "downstream": ["exec-report"],
}


async def run_assets(server: RestartablePrefect, home: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        str(PYTHON),
        str(SCRIPTS / "run_assets.py"),
        env=prefect_env(home, server.url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, f"run_assets.py failed:\n{err.decode()[-3000:]}"
    assert out.decode().strip() == "COMPLETED"


async def test_a_missed_sla_names_what_is_downstream(
    start_engine: StartEngine, restartable_prefect: RestartablePrefect, tmp_path: Path
) -> None:
    running = await start_engine(
        prefect_api_url=restartable_prefect.url,
        prefect_follow=True,
        prefect_follow_events=["prefect.asset.*"],
    )
    follower(running).timing = FAST
    await wait_for_state(running, "connected")
    async with running.client() as client:
        answer = await client.post("/api/slas/apply", json={"slas": [SALES_FRESH]})
    assert answer.status_code == 200, answer.text

    await run_assets(restartable_prefect, tmp_path)
    await stored(running, named("prefect.asset.materialization.succeeded"), 3, timeout=30)
    missed_at = clock.now() + timedelta(hours=1, seconds=5)
    await running.engine.pipeline.run_due(missed_at)

    (alert,) = await alerts(running, 1)
    assert alert["kind"] == "sla"
    assert alert["severity"] == "critical"
    assert alert["downstream"] == ["exec-report", "finance-dashboard", "forecast-model"]
    assert alert["summary"].endswith("; downstream: exec-report, finance-dashboard, forecast-model")
    code, out, err = await invoke("alerts", "show", alert["id"], "--api", running.url)
    assert code == 0, err
    assert "downstream   exec-report, finance-dashboard, forecast-model" in out
