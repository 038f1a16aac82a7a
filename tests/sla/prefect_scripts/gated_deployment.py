"""Run by tests/sla/test_prefect_server.py with the Prefect venv's Python: creates the
deployment `sla-etl/nightly`, starts a flow run of it and runs that run here, in the flow
engine; the flow waits until the file argv[1] exists, so the test decides how long the run
takes.

Prints one JSON line when the run ends: {"flow_run_id", "deployment_id", "state"}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow


@flow(name="sla-etl")  # type: ignore[untyped-decorator]
def gated(gate: str) -> int:
    deadline = time.monotonic() + 120
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gate} did not appear")
        time.sleep(0.05)
    return 1


def main() -> int:
    gate = sys.argv[1]
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(gated)
        deployment_id = client.create_deployment(
            flow_id=flow_id, name="nightly", entrypoint="gated_deployment.py:gated"
        )
        flow_run = client.create_flow_run_from_deployment(deployment_id, parameters={"gate": gate})
    state = run_flow(gated, flow_run=flow_run, parameters={"gate": gate}, return_type="state")
    report = {
        "flow_run_id": str(flow_run.id),
        "deployment_id": str(deployment_id),
        "state": state.type.value,
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
