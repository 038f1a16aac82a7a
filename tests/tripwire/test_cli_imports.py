"""Commands that talk to a running engine start fast: they import none of the engine's heavy
parts, neither directly nor through a package's `__init__`."""

from __future__ import annotations

import asyncio
import json
import sys

from tests.support import Running
from tripwire.settings import Settings
from tripwire_client.config import DEFAULT_API_URL

HEAVY = (
    "aiosqlite",
    "apscheduler",
    "asyncpg",
    "fastapi",
    "faststream",
    "nats",
    "sqlalchemy",
    "uvicorn",
)

# Runs one command as `tripwire` does, then prints the heavy packages it imported.
RUN = f"""
import json, sys
from tripwire.cli import app
try:
    app(sys.argv[1:], prog_name="tripwire")
except SystemExit as stop:
    code = stop.code
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


async def imported_by(*args: str) -> tuple[int, list[str]]:
    """The exit code of `tripwire ARGS` in a fresh interpreter and the heavy packages it
    imported."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    report = json.loads(out.decode().splitlines()[-1])
    return report["code"], report["heavy"]


async def test_commands_for_a_running_engine_import_none_of_the_engine(
    engine: Running,
) -> None:
    api = ("--api", engine.url)
    for command in (
        ("emit", "imports.checked", "--resource", "r", "--payload", '{"rows": 1}', *api),
        ("events", "ls", "--since", "1h", *api),
        ("automations", "ls", *api),
        ("explain", "nothing-by-this-name", *api),
        ("actions", "ls", *api),
        ("sla", "ls", *api),
        ("webhooks", "ls", *api),
        ("--help",),
    ):
        code, heavy = await imported_by(*command)
        assert code in (0, 1), command  # `explain` fails: no such automation
        assert heavy == [], f"tripwire {' '.join(command)} imported {heavy}"


def test_the_cli_looks_for_the_engine_where_the_settings_put_it_by_default() -> None:
    """The CLI does not import the settings to learn the default address: keep them equal."""
    fields = Settings.model_fields
    assert f"http://{fields['host'].default}:{fields['port'].default}" == DEFAULT_API_URL
