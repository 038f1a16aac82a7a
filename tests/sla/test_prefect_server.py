"""A real Prefect server runs a flow run of a deployment for longer than the deployment's
TimeToCompletion SLA; tripwire follows its flow-run events and reports the violation as
Prefect does (`prefect.sla.violation`, about the flow run, the deployment related) and
the recovery when the run completes."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from events import clock
from tests.events.prefect_follow_server import PYTHON, RestartablePrefect, prefect_env
from tests.events.test_follower import FAST, follower, wait_for_state
from tests.sla.test_prefect_live import named
from tests.support import StartEngine
from tests.triggers.test_live import stored
from tests.tripwire.test_cli_automations import invoke

pytestmark = [pytest.mark.prefect, pytest.mark.slow, pytest.mark.timeout(180)]

SCRIPT = Path(__file__).parent / "prefect_scripts" / "gated_deployment.py"
PREFECT_YAML = """\
name: sla-etl
prefect-version: 3.8.0
deployments:
  - name: nightly
    entrypoint: gated_deployment.py:gated
    sla:
      - name: runs-under-a-minute
        duration: 60
        severity: critical
        labels: {team: data}
"""


async def test_a_run_longer_than_its_time_to_completion_sla_is_a_violation(
    start_engine: StartEngine, restartable_prefect: RestartablePrefect, tmp_path: Path
) -> None:
    running = await start_engine(
        prefect_api_url=restartable_prefect.url,
        prefect_follow=True,
        prefect_follow_events=["prefect.flow-run.*"],
    )
    follower(running).timing = FAST
    await wait_for_state(running, "connected")
    project = tmp_path / "prefect.yaml"
    project.write_text(PREFECT_YAML)
    code, out, err = await invoke("apply", "-f", str(project), "--api", running.url)
    assert code == 0, err
    assert out.splitlines() == ["created SLA nightly:runs-under-a-minute"]
    await running.engine.pipeline.reload()

    gate = tmp_path / "gate"
    process = await asyncio.create_subprocess_exec(
        str(PYTHON),
        str(SCRIPT),
        str(gate),
        env=prefect_env(tmp_path / "client", restartable_prefect.url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await stored(running, named("prefect.flow-run.Running"), 1, timeout=60)
        # The run is still going (it waits for the gate): a minute passes on the clock.
        missed = await running.engine.pipeline.run_due(clock.now() + timedelta(seconds=61))
        assert len(missed.messages) == 2  # tripwire.sla.missed and prefect.sla.violation
    finally:
        gate.touch()
        out_bytes, err_bytes = await process.communicate()
    assert process.returncode == 0, err_bytes.decode()[-3000:]
    report = json.loads(out_bytes.decode().strip().splitlines()[-1])
    assert report["state"] == "COMPLETED"

    await stored(running, named("prefect.sla.violation"), 1)
    (violation,) = (await running.engine.store.read(named("prefect.sla.violation"))).events
    assert violation.resource.id == f"prefect.flow-run.{report['flow_run_id']}"
    related = {r.role: r for r in violation.related}
    assert related["deployment"].id == f"prefect.deployment.{report['deployment_id']}"
    assert related["deployment"].name == "nightly"
    assert related["flow"].name == "sla-etl"
    assert related["sla"].name == "runs-under-a-minute"
    assert violation.payload["sla"]["duration"] == 60
    assert violation.payload["flow_run"]["id"] == report["flow_run_id"]

    # The run completed after all: the miss recovers.
    await stored(running, named("tripwire.sla.recovered"), 1, timeout=30)
    (missed_event,) = (await running.engine.store.read(named("tripwire.sla.missed"))).events
    assert missed_event.payload["labels"] == {"team": "data", "prefect.sla.severity": "critical"}
