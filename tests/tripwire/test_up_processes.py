"""`tripwire up` in several processes: real processes, a real nats-server, SQLite and
PostgreSQL. It starts its processes and serves; Ctrl-C and SIGTERM stop all of them; a
process that dies ends `up` with an error naming its roles; events fire once."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import pytest

from events.embedded import free_port
from tests.tripwire.test_up import alive
from tripwire.cli.processes import Part, layout
from tripwire.engine import Role

AUTOMATIONS = """
automations:
  - name: up-item-done
    trigger:
      type: event
      expect: [up.item.done]
      for_each: [prefect.resource.id]
      posture: Reactive
      threshold: 1
      within: 0
    actions:
      - type: do-nothing
"""
TRIGGERED = {"event": {"name": ["tripwire.automation.triggered"]}}
ITEMS = {"event": {"name": ["up.item.done"]}}
WAIT = 60.0  # seconds for a state to be reached; never a measure of speed


class Up:
    """`tripwire up` as a user runs it, its output collected as it comes."""

    def __init__(self, home: Path, port: int, *args: str, database_url: str | None = None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPWIRE_")}
        if database_url is not None:
            env["TRIPWIRE_DATABASE_URL"] = database_url
        command = ["up", "--home", str(home), "--port", str(port), *args]
        self.home = home
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tripwire.cli", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.decode())

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"up exited waiting for {what}:\n{self.output}"
            with contextlib.suppress(httpx.TransportError):
                if check():
                    return
            time.sleep(0.1)
        raise AssertionError(f"not reached within {WAIT:.0f}s: {what}\n{self.output}")

    def started(self) -> Up:
        """Until the banner is out (every process listens)."""
        self.wait_for(lambda: "Ctrl-C stops everything." in self.output, "the banner")
        return self

    @property
    def children(self) -> dict[str, int]:
        """The processes `up` started for its roles, by the name `ps -o comm` shows."""
        found: dict[str, int] = {}
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                name = Path(f"/proc/{child}/comm").read_text().strip()
                if name.startswith("tw-"):
                    found[name.removeprefix("tw-")] = int(child)
        return found

    @property
    def nats(self) -> int:
        return int((self.home / "nats" / "nats-server.pid").read_text())

    def stop(self, how: signal.Signals = signal.SIGINT) -> str:
        if self.process.poll() is None:
            self.process.send_signal(how)
        try:
            self.process.wait(timeout=120)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.output

    def total(self, flt: Mapping[str, object]) -> int:
        response = httpx.post(self.url + "/api/events/filter", json={"filter": flt, "limit": 1})
        response.raise_for_status()
        return int(response.json()["total"])

    def lag(self) -> int | None:
        lag = httpx.get(self.url + "/api/health", timeout=2).json()["store_consumer"]["lag"]
        return None if lag is None else int(lag)


def test_layouts_keep_the_worker_and_the_timers_together() -> None:
    worker_sla = frozenset({Role.worker, Role.sla})
    assert layout(1, sqlite=True) == [Part("engine", frozenset(Role))]
    assert [p.roles for p in layout(2, sqlite=True)] == [
        worker_sla,
        frozenset({Role.api, Role.actions}),
    ]
    assert [p.name for p in layout(3, sqlite=True)] == ["worker", "api", "actions"]
    # One process writes a SQLite file's events: no more workers there.
    assert [p.name for p in layout(6, sqlite=True)] == ["worker", "api", "actions"]
    assert [p.name for p in layout(5, sqlite=False)] == [
        "worker",
        "api",
        "actions",
        "worker-2",
        "worker-3",
    ]
    assert sum(Role.sla in p.roles for p in layout(5, sqlite=False)) == 1


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_up_runs_its_roles_in_two_processes_and_a_signal_stops_them_all(
    tmp_path: Path, how: signal.Signals
) -> None:
    port = free_port()
    up = Up(tmp_path / "data", port, "--processes", "2").started()
    try:
        children, nats = up.children, up.nats
        assert set(children) == {"worker", "api"}
        assert all(alive(pid) for pid in [*children.values(), nats])
        roles = httpx.get(up.url + "/api/health").json()["roles"]
        assert roles == ["actions", "api"]  # the worker and the timers are elsewhere
    finally:
        output = up.stop(how)
    assert up.process.returncode == 0, output
    assert "processes 2 on" in output
    assert re.search(rf"worker, sla\s+pid {children['worker']}\s+port \d+", output), output
    assert re.search(rf"api, actions\s+pid {children['api']}\s+port {port} \(API\)", output)
    assert "Traceback" not in output
    assert not any(alive(pid) for pid in [*children.values(), nats])


def test_a_role_process_killed_ends_up_with_an_error_naming_it(tmp_path: Path) -> None:
    up = Up(tmp_path / "data", free_port(), "--processes", "2").started()
    children, nats = up.children, up.nats
    os.kill(children["worker"], signal.SIGKILL)
    try:
        up.process.wait(timeout=120)
    finally:
        output = up.stop()
    assert up.process.returncode == 1, output
    killed = f"the worker process (worker, sla; pid {children['worker']}) was killed by SIGKILL"
    assert killed in output
    assert not any(alive(pid) for pid in [*children.values(), nats])


def test_up_keeps_one_process_when_asked(tmp_path: Path) -> None:
    up = Up(tmp_path / "data", free_port(), "--processes", "1").started()
    try:
        assert up.children == {}
        roles = httpx.get(up.url + "/api/health").json()["roles"]
        assert roles == ["actions", "api", "sla", "worker"]
    finally:
        output = up.stop()
    assert up.process.returncode == 0, output
    assert f"processes 1: api, worker, sla, actions (pid {up.process.pid}" in output


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_events_posted_to_several_processes_fire_once(tmp_path: Path, database_url: str) -> None:
    definitions = tmp_path / "automations.yaml"
    definitions.write_text(AUTOMATIONS)
    home, port = tmp_path / "data", free_port()
    keys = 300
    events = [
        {"event": "up.item.done", "resource": {"prefect.resource.id": f"up.item.{n}"}}
        for n in range(keys)
    ]
    args = ("--processes", "2", "--automations", str(definitions))
    up = Up(home, port, *args, database_url=database_url).started()
    try:
        for start in range(0, keys, 50):
            response = httpx.post(up.url + "/api/events", json=events[start : start + 50])
            assert response.status_code == 202, response.text
        up.wait_for(lambda: up.total(TRIGGERED) >= keys, "a firing per key")
        assert up.total(ITEMS) == keys
    finally:
        output = up.stop()
    assert up.process.returncode == 0, output

    # Once more, in one process over the same data: nothing was left to fire again.
    again = Up(home, port, "--processes", "1", database_url=database_url).started()
    try:
        again.wait_for(lambda: again.lag() == 0, "the store to catch up")
        triggered = httpx.post(
            again.url + "/api/events/filter", json={"filter": TRIGGERED, "limit": 1000}
        ).json()

        def actions() -> list[dict[str, object]]:
            found = httpx.get(again.url + "/api/actions", params={"limit": 1000}).json()
            return list(found)

        # Requests of the last firings may still be on their way to the ledger.
        again.wait_for(lambda: len(actions()) >= keys, "an action request per firing")
        requested = actions()
    finally:
        again.stop()
    resources = [
        e["payload"]["triggering_event"]["resource"]["prefect.resource.id"]
        for e in triggered["events"]
    ]
    assert triggered["total"] == keys
    assert len(set(resources)) == keys
    assert len(requested) == keys
    assert len({a["id"] for a in requested}) == keys
