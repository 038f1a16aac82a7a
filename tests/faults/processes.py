"""Real processes for the fault suite, on free loopback ports: nats-servers (one, or three
as a JetStream cluster) and `tripwire serve api|worker`. A `Lab` starts them and kills
whatever is still running when the test ends, failed or not.

    lab = Lab(tmp_path)
    nats = lab.nats(3)                   # a 3-node JetStream cluster; lab.nats() for one
    await nats.wait_jetstream()
    api = lab.tripwire("api", env)       # env: TRIPWIRE_* for the process
    await api.wait_healthy()
    nats.nodes[0].kill()                 # SIGKILL; .start() brings it back on the same
                                         # ports and store
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import nats
from nats.aio.client import Client as NATS
from nats.js.errors import APIError

from events.embedded import free_port, nats_server_binary


def _die_with_parent() -> None:
    # Linux: the child gets SIGKILL when the test process goes away without cleaning up.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Process:
    """One child process, its command fixed, startable again after it was killed."""

    def __init__(self, command: list[str], log: Path, env: Mapping[str, str] | None = None):
        self.command = command
        self.log = log
        self.env = dict(env) if env is not None else None
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.command[0]} is running already")
        # Appended: a restarted process continues the same log.
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # started from the test's main thread
            )

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye, as in a crash."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class NatsNode(Process):
    """One nats-server with JetStream; with `routes` a member of a cluster."""

    def __init__(self, folder: Path, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.cluster_port = free_port()  # used once the node `join`s a cluster
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / f"{name}.conf"
        lines = [
            f"server_name: {name}",
            f"listen: 127.0.0.1:{self.port}",
            f'jetstream {{ store_dir: "{folder / name}" }}',
        ]
        self.config.write_text("\n".join(lines) + "\n")
        super().__init__([nats_server_binary(), "-c", str(self.config)], folder / f"{name}.log")

    def join(self, cluster: str, route_ports: list[int]) -> None:
        """Make this node a member of `cluster` routing to those ports (before `start`)."""
        routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in route_ports)
        with self.config.open("a") as config:
            config.write(
                f"cluster {{ name: {cluster}, listen: 127.0.0.1:{self.cluster_port}, "
                f"routes: [{routes}] }}\n"
            )

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until it accepts connections (JetStream may still be electing)."""
        super().start()
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if not self.alive:
                raise RuntimeError(f"nats-server {self.name} exited; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nats-server {self.name} did not listen within {timeout}s")
            time.sleep(0.05)


async def _quiet(error: Exception) -> None:
    pass


class NatsCluster:
    """Nodes of one JetStream cluster (or a single node); `url` lists them all."""

    def __init__(self, nodes: list[NatsNode]) -> None:
        self.nodes = nodes

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def node(self, name: str) -> NatsNode:
        (found,) = [node for node in self.nodes if node.name == name]
        return found

    async def connect(self) -> NATS:
        """A client connection of the test's own, to any node, reconnecting forever."""
        return await nats.connect(
            [node.url for node in self.nodes],
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            allow_reconnect=True,
            error_cb=_quiet,  # a node the test killed refuses connections: expected
        )

    async def wait_jetstream(self, timeout: float = 30.0) -> None:
        """Until JetStream answers (in a cluster: a meta leader was elected)."""
        nc = await self.connect()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        await nc.jetstream(timeout=1).account_info()
                        return
                    except (APIError, nats.errors.Error, TimeoutError):
                        await asyncio.sleep(0.1)
        finally:
            await nc.close()


class Tripwire(Process):
    """`tripwire serve ROLE` with its own TRIPWIRE_* environment; health on `url`."""

    def __init__(self, role: str, env: Mapping[str, str], log: Path) -> None:
        self.role = role
        self.port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("TRIPWIRE_")}
        command = [sys.executable, "-m", "tripwire.cli", "serve", role, "--port", str(self.port)]
        super().__init__(command, log, base | dict(env))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        """Until /api/health answers 200 (bus and database up)."""
        async with httpx.AsyncClient(timeout=2) as client:
            async with asyncio.timeout(timeout):
                while True:
                    assert self.alive, f"tripwire {self.role} exited:\n{self.log_text()[-3000:]}"
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get(self.url + "/api/health")).status_code == 200:
                            return
                    await asyncio.sleep(0.1)


class Lab:
    """Starts processes in a folder and kills every one of them at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[Process] = []
        self._count = 0

    def nats(self, size: int = 1) -> NatsCluster:
        """One nats-server, or `size` of them as a JetStream cluster; started."""
        folder = self.folder / "nats"
        nodes = [NatsNode(folder, f"n{i + 1}") for i in range(size)]
        if size > 1:
            ports = [node.cluster_port for node in nodes]
            for node in nodes:
                node.join("tripwire-faults", ports)
        self.processes += nodes
        for node in nodes:
            node.start()
        return NatsCluster(nodes)

    def tripwire(self, role: str, env: Mapping[str, str]) -> Tripwire:
        """`tripwire serve ROLE`, started; its log is `<role><n>.log` in the folder."""
        self._count += 1
        name = f"{role}{self._count}"
        process = Tripwire(
            role, {"TRIPWIRE_HOME": str(self.folder / name), **env}, self.folder / f"{name}.log"
        )
        self.processes.append(process)
        process.start()
        return process

    def close(self) -> None:
        """Kill everything still running (tripwire first, then NATS)."""
        for process in sorted(self.processes, key=lambda p: isinstance(p, NatsNode)):
            process.kill()
