"""docker-compose.yml stays consistent with the CLI and the settings (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from tripwire.cli import app
from tripwire.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def tripwire_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose()["services"].items() if svc.get("build") == "."}


def test_every_tripwire_command_exists_in_the_cli() -> None:
    cli = get_command(app)
    services = tripwire_services()
    assert {"api", "worker-1", "worker-2", "sla-1", "sla-2"} <= set(services)
    for name, service in services.items():
        group, *rest = service["command"]
        command = cli.commands[group]  # type: ignore[attr-defined]
        if rest:
            assert rest[0] in command.commands, f"{name}: tripwire {group} {rest[0]} does not exist"


def test_environment_names_real_settings_and_parses() -> None:
    fields = {f"TRIPWIRE_{name.upper()}" for name in Settings.model_fields}
    for name, service in tripwire_services().items():
        env = service["environment"]
        assert set(env) <= fields, f"{name}: unknown settings {set(env) - fields}"
        settings = Settings(**{k.removeprefix("TRIPWIRE_").lower(): v for k, v in env.items()})
        assert settings.stream_replicas == 3
        assert settings.port == 4280


def test_nats_cluster_routes_point_at_each_other() -> None:
    services = compose()["services"]
    nodes = {n for n in services if n.startswith("nats")}
    assert len(nodes) == 3
    for node in nodes:
        command = services[node]["command"]
        routes = command[command.index("--routes") + 1].split(",")
        assert {r.split("//")[1].split(":")[0] for r in routes} == nodes - {node}
    api_env = tripwire_services()["api"]["environment"]
    assert {
        u.split("//")[1].split(":")[0] for u in api_env["TRIPWIRE_NATS_URL"].split(",")
    } == nodes
