"""Run by tests/events/test_follower.py with the Prefect venv's Python: runs real flows
against the server at PREFECT_API_URL, one after another.

argv[1]: a JSON list of outcomes, "ok" (the flow returns) or "fail" (it raises).
Prints one JSON line per run as it ends: {"index", "outcome", "flow_run_id", "state"}.
A run the server could not take (it is restarting) is reported with "error" instead, and
the next one waits until the server answers again: the tests restart the server while
this keeps running.
"""

from __future__ import annotations

import json
import os
import sys
import time

import httpx
from prefect import flow


@flow(name="follow-ok")  # type: ignore[untyped-decorator]
def succeeds() -> int:
    return 1


@flow(name="follow-fail")  # type: ignore[untyped-decorator]
def fails() -> None:
    raise ValueError("this flow fails on purpose")


def wait_for_server(timeout: float = 120.0) -> None:
    url = os.environ["PREFECT_API_URL"] + "/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the Prefect server at {url} did not come back within {timeout:g}s")


def main() -> int:
    for index, outcome in enumerate(json.loads(sys.argv[1])):
        wait_for_server()
        report: dict[str, object] = {"index": index, "outcome": outcome}
        try:
            state = (succeeds if outcome == "ok" else fails)(return_state=True)
            report["flow_run_id"] = str(state.state_details.flow_run_id)
            report["state"] = state.type.value
        except Exception as exc:  # the server went away mid-run
            report["error"] = f"{type(exc).__name__}: {exc}"[:300]
        print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
