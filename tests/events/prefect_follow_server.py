"""A real Prefect server (.venv-prefect) that tests can stop and start again on the same
port and database, with its event persister on (the actions tests' server runs without
services, so it stores no events and could not backfill).

Each start is a new `prefect server start` process; `stop` ends it by pid. PREFECT and
PREFECT_VENV come from the actions tests' server module.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from events.embedded import free_port
from tests.actions.prefect_server import PREFECT, PREFECT_VENV, _stop, _wait_healthy

SCRIPTS = Path(__file__).parent / "prefect_scripts"
PYTHON = PREFECT_VENV / "bin" / "python"

# Prefect's services that would only compete for SQLite's write lock in these tests.
IDLE_SERVICES = (
    "SCHEDULER",
    "LATE_RUNS",
    "CANCELLATION_CLEANUP",
    "DB_VACUUM",
    "FOREMAN",
    "PAUSE_EXPIRATIONS",
    "REPOSSESSOR",
    "CLEANUP_RECONCILER",
    "TASK_RUN_RECORDER",
    "TRIGGERS",
    "EVENT_LOGGER",
)


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """This process's environment without PREFECT_*, pointed at `home` (and `api_url`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


class RestartablePrefect:
    """`prefect server start` on a fixed port and SQLite file, stopped and started at will."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = env or {}  # more server settings, e.g. PREFECT_SERVER_API_AUTH_STRING
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.log = home / "server.log"
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers /health."""
        env = prefect_env(self.home)
        env.update(
            {
                "PREFECT_SERVER_DATABASE_CONNECTION_URL": (
                    f"sqlite+aiosqlite:///{self.home / 'prefect.db'}"
                ),
                "PREFECT_SERVER_UI_ENABLED": "false",
                "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",
                "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "0.5",
                **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in IDLE_SERVICES},
                **self.env,
            }
        )
        self.starts += 1
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.home,
            )
        _wait_healthy(self._process, self.url, self.log)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a grace period)."""
        if self._process is not None:
            _stop(self._process)
            self._process = None
