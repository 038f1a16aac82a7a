# Airflow is not installed where mypy runs: its decorators are untyped there.
# mypy: disable-error-code="untyped-decorator"
"""DAGs for tests/clients/python/test_airflow.py, run with the Airflow venv's Python (dag.test()).

This folder is the DAGs folder of the run: Airflow 3's dag.test() runs only DAGs it has
parsed and serialized from there.

- tripwire_demo_listener: `extract` succeeds (and emits its own event from inside the task),
  `load` fails; the listener plugin, found through tripwire-client's entry point, reports it.
- tripwire_demo_callbacks: the listener switched off, the same events from plain callbacks.

Prints one JSON line: the run ids.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from airflow.sdk import DAG, task

from tripwire_client.airflow import emit_event, tripwire_callback

START = datetime(2026, 1, 1, tzinfo=UTC)

with DAG(
    "tripwire_demo_listener", schedule=None, start_date=START, tags=["sales", "nightly"]
) as listener_dag:

    @task
    def extract() -> int:
        emit_event("sales.extract.done", "sales.table.orders", payload={"rows": 3})
        return 3

    @task(retries=0)
    def load(rows: int) -> None:
        raise ValueError(f"the sales table refused {rows} rows")

    load(extract())


with DAG(
    "tripwire_demo_callbacks",
    schedule=None,
    start_date=START,
    tags=["finance"],
    on_success_callback=tripwire_callback(),
) as callbacks_dag:

    @task(on_success_callback=tripwire_callback())
    def publish() -> None:
        pass

    publish()


if __name__ == "__main__":
    import tripwire_client

    failed_run = listener_dag.test()
    os.environ["TRIPWIRE_AIRFLOW_LISTENER"] = "false"
    good_run = callbacks_dag.test()
    tripwire_client.flush(10)
    print(json.dumps({"failed": failed_run.run_id, "succeeded": good_run.run_id}))
