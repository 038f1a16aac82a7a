"""The CLI against a running engine."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from tests.support import Running
from tripwire.cli import app
from tripwire.cli.api import engine_url

runner = CliRunner()


async def invoke(*args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_emit_then_list(engine: Running) -> None:
    code, out, _ = await invoke(
        "emit",
        "my.event",
        "--resource",
        "my.resource.id",
        "--label",
        "team=data",
        "--related",
        "airflow.dag.sales:dag",
        "--payload",
        '{"rows": 3}',
        "--api",
        engine.url,
    )
    assert code == 0, out
    event_id = out.strip()
    await engine.wait_stored(1)
    code, out, _ = await invoke(
        "events", "ls", "--json", "--api", engine.url, "--event", "my.", "--since", "1h"
    )
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert [e["id"] for e in listed] == [event_id]
    assert listed[0]["resource"] == {"prefect.resource.id": "my.resource.id", "team": "data"}
    assert listed[0]["related"] == [
        {"prefect.resource.id": "airflow.dag.sales", "prefect.resource.role": "dag"}
    ]
    assert listed[0]["payload"] == {"rows": 3}
    code, out, _ = await invoke("events", "ls", "--api", engine.url, "--resource", "other.id")
    assert code == 0
    assert out == ""


async def test_bad_arguments_and_unreachable_engine_are_clear(engine: Running) -> None:
    code, _, err = await invoke(
        "emit", "e", "--resource", "r", "--payload", "{oops", "--api", engine.url
    )
    assert code == 1
    assert "--payload is not valid JSON" in err
    code, _, err = await invoke(
        "emit", "e", "--resource", "r", "--label", "novalue", "--api", engine.url
    )
    assert code == 1
    assert "KEY=VALUE" in err
    code, _, err = await invoke("events", "ls", "--since", "soon", "--api", engine.url)
    assert code == 1
    assert "not a duration" in err
    code, _, err = await invoke("events", "ls", "--api", "http://127.0.0.1:9")
    assert code == 1
    assert "is it running" in err


async def test_the_cli_finds_the_api_where_the_settings_put_it(
    engine: Running, monkeypatch
) -> None:
    """`TRIPWIRE_PORT=… tripwire up` and a CLI command in the same environment agree."""
    for name in ("TRIPWIRE_API_URL", "TRIPWIRE_URL"):
        monkeypatch.delenv(name, raising=False)
    port = engine.url.rsplit(":", 1)[1]
    monkeypatch.setenv("TRIPWIRE_HOST", "0.0.0.0")  # listening everywhere: call it locally
    monkeypatch.setenv("TRIPWIRE_PORT", port)
    code, _, err = await invoke("events", "ls")
    assert code == 0, err
    assert engine_url(None) == f"http://127.0.0.1:{port}"
    monkeypatch.setenv("TRIPWIRE_HOST", "::")
    assert engine_url(None) == f"http://[::1]:{port}"
    monkeypatch.setenv("TRIPWIRE_URL", "http://elsewhere:9999/")
    assert engine_url(None) == "http://elsewhere:9999"
    assert engine_url("http://given:1") == "http://given:1"
    monkeypatch.delenv("TRIPWIRE_URL")
    monkeypatch.delenv("TRIPWIRE_HOST")
    monkeypatch.delenv("TRIPWIRE_PORT")
    assert engine_url(None) == "http://127.0.0.1:4280"


async def test_config_masks_secrets(monkeypatch) -> None:
    monkeypatch.setenv("TRIPWIRE_API_KEY", "very-secret")
    monkeypatch.setenv("TRIPWIRE_PREFECT_API_KEY", "pnu_secret")
    monkeypatch.setenv("TRIPWIRE_DATABASE_URL", "postgresql+asyncpg://app:db-secret@db/tw")
    monkeypatch.setenv("TRIPWIRE_NATS_URL", "nats://a:nats-secret@n1:4222,nats://n2:4222")
    code, out, _ = await invoke("config")
    assert code == 0
    for secret in ("very-secret", "pnu_secret", "db-secret", "nats-secret"):
        assert secret not in out
    assert "postgresql+asyncpg://app:********@db/tw" in out
    assert "nats://a:********@n1:4222,nats://n2:4222" in out
    assert "api_key" in out


async def test_events_tail_prints_live_events(engine: Running) -> None:
    import sys

    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tripwire.cli",
        "events",
        "tail",
        "--json",
        "--no-backfill",
        "--event",
        "tail.",
        "--api",
        engine.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(20):
            # emit until the tail has subscribed and printed one (nothing is backfilled)
            line = b""
            while not line:
                async with engine.client() as http:
                    await http.post(
                        "/api/events",
                        json=[
                            {"event": "other.event", "resource": {"prefect.resource.id": "x"}},
                            {"event": "tail.seen", "resource": {"prefect.resource.id": "r"}},
                        ],
                    )
                assert tail.stdout is not None
                try:
                    line = await asyncio.wait_for(tail.stdout.readline(), 0.5)
                except TimeoutError:
                    continue
        printed = json.loads(line)
        assert printed["event"] == "tail.seen"
        assert printed["resource"] == {"prefect.resource.id": "r"}
    finally:
        tail.terminate()
        await tail.wait()
