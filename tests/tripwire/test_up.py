"""`tripwire up` as a user runs it: a real process, Ctrl-C, and a second start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from events.embedded import free_port


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "tripwire up exited while starting"
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("tripwire up did not become healthy")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}").exists()
        and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    )


def run_up(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPWIRE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "tripwire.cli", "up", "--home", str(home), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


def test_up_serves_stops_on_ctrl_c_and_keeps_data(tmp_path: Path) -> None:
    home, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    first = run_up(home, port)
    try:
        wait_healthy(url, first)
        nats_pid = int((home / "nats" / "nats-server.pid").read_text())
        assert alive(nats_pid)
        accepted = httpx.post(
            url + "/api/events", json={"event": "up.test", "resource": {"prefect.resource.id": "r"}}
        )
        assert accepted.status_code == 202
        event_id = accepted.json()["accepted"][0]
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/api/events/{event_id}").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGINT)
        output = first.communicate(timeout=30)[0].decode()
    assert first.returncode == 0, output
    assert f"API       {url}" in output
    assert "tripwire events tail" in output
    assert not alive(nats_pid)
    assert (home / "tripwire.db").exists()

    second = run_up(home, port)
    try:
        wait_healthy(url, second)
        assert httpx.get(f"{url}/api/events/{event_id}").json()["event"] == "up.test"
    finally:
        second.send_signal(signal.SIGINT)
        second.communicate(timeout=30)
    assert second.returncode == 0


def test_up_on_a_busy_port_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = run_up(tmp_path / "data", port)
        output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 1
    assert "already in use" in output
    assert "Traceback" not in output
