"""Connections defined in YAML: `tripwire apply` and `/api/connections` on a running engine."""

from __future__ import annotations

from pathlib import Path

from tests.support import Running
from tests.tripwire.test_cli_automations import invoke

STAGING = """\
connections:
  - name: staging
    api_url: {url}
    api_key: "{{{{ secret('STAGING_PREFECT_API_KEY') }}}}"
automations:
  - name: reload-staging
    trigger: {{type: event, expect: [orders.loaded]}}
    actions:
      - {{type: run-deployment, connection: staging, deployment: etl/prod}}
"""


def write(path: Path, url: str = "https://prefect-staging.internal/api") -> str:
    path.write_text(STAGING.format(url=url))
    return str(path)


async def listed(engine: Running) -> list[dict[str, str]]:
    async with engine.client() as client:
        response = await client.get("/api/connections")
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_apply_creates_then_keeps_then_updates_connections(
    engine: Running, tmp_path: Path
) -> None:
    file = write(tmp_path / "staging.yaml")
    code, out, err = await invoke("apply", "-f", file, "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == ["created connection staging", "created reload-staging"]
    code, out, _ = await invoke("apply", "-f", file, "--api", engine.url)
    assert out.splitlines() == ["unchanged connection staging", "unchanged reload-staging"]

    (shown,) = await listed(engine)
    assert shown["name"] == "staging"
    assert shown["type"] == "prefect"
    assert shown["api_key"] == "{{ secret('STAGING_PREFECT_API_KEY') }}"  # never a value
    assert shown["auth_string"] is None
    assert {"created", "updated"} <= set(shown)

    moved = write(tmp_path / "moved.yaml", "https://prefect-staging-2.internal/api")
    code, out, _ = await invoke("apply", "-f", moved, "--dry-run", "--api", engine.url)
    assert out.splitlines() == [
        "would update connection staging",
        "unchanged reload-staging",
        "dry run: nothing was changed",
    ]
    assert (await listed(engine))[0]["api_url"] == "https://prefect-staging.internal/api"
    code, out, _ = await invoke("apply", "-f", moved, "--api", engine.url)
    assert out.splitlines() == ["updated connection staging", "unchanged reload-staging"]
    assert (await listed(engine))[0]["api_url"] == "https://prefect-staging-2.internal/api"


async def test_prune_deletes_connections_only_when_the_files_define_some(
    engine: Running, tmp_path: Path
) -> None:
    await invoke("apply", "-f", write(tmp_path / "staging.yaml"), "--api", engine.url)
    automations_only = tmp_path / "automations.yaml"
    automations_only.write_text("name: other\ntrigger: {type: event}\n")

    code, out, err = await invoke(
        "apply", "-f", str(automations_only), "--prune", "--api", engine.url
    )
    assert code == 0, err
    assert out.splitlines() == ["created other", "deleted reload-staging"]
    assert [c["name"] for c in await listed(engine)] == ["staging"]  # kept

    connections_only = tmp_path / "connections.yaml"
    connections_only.write_text("connections:\n  - {name: prod, api_url: 'http://prod/api'}\n")
    code, out, _ = await invoke(
        "apply", "-f", str(connections_only), "--prune", "--dry-run", "--api", engine.url
    )
    assert out.splitlines() == [
        "would create connection prod",
        "would delete connection staging",
        "dry run: nothing was changed",
    ]
    code, out, _ = await invoke(
        "apply", "-f", str(connections_only), "--prune", "--api", engine.url
    )
    assert out.splitlines() == ["created connection prod", "deleted connection staging"]
    assert [c["name"] for c in await listed(engine)] == ["prod"]
    code, out, _ = await invoke("automations", "ls", "--api", engine.url)
    assert "other" in out  # a connections-only file left the automations alone


async def test_apply_refuses_a_bad_connection_with_its_line(
    engine: Running, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "connections:\n"
        "  - name: staging\n"
        "    api_url: prefect-staging.internal\n"
        "    api_key: \"{{ secret('K') }}\"\n"
        "    auth_string: \"{{ secret('A') }}\"\n"
    )
    code, out, err = await invoke("apply", "-f", str(bad), "--api", engine.url)
    assert code == 1
    assert out == ""
    assert f"{bad}:3: connections[0].api_url: must be an http(s) URL" in err
    assert "nothing was applied" in err
    assert await listed(engine) == []


async def test_the_api_names_the_field_at_fault(engine: Running) -> None:
    good = {"name": "prod", "api_url": "http://prod/api"}
    async with engine.client() as client:
        wrong_url = await client.post(
            "/api/connections/apply", json={"connections": [good, {**good, "api_url": "ftp:"}]}
        )
        both = await client.post(
            "/api/connections/apply",
            json={"connections": [{**good, "api_key": "k", "auth_string": "u:p"}]},
        )
        twice = await client.post("/api/connections/apply", json={"connections": [good, good]})
        not_json = await client.post(
            "/api/connections/apply",
            content=b"{nope",
            headers={"content-type": "application/json"},
        )
        typo = await client.post("/api/connections/apply", json={"connection": [good]})
        applied = await client.post(
            "/api/connections/apply", params={"dry_run": "true"}, json={"connections": [good]}
        )

    assert wrong_url.status_code == 422
    assert wrong_url.json()["field"] == "connections[1].api_url"
    assert "http(s) URL" in wrong_url.json()["detail"]
    assert both.json()["field"] == "connections[0]"
    assert "not both" in both.json()["detail"]
    assert twice.status_code == 422
    assert twice.json()["field"] == "connections[1].name"
    assert not_json.status_code == 422
    assert "not valid JSON" in not_json.json()["detail"]
    assert typo.status_code == 422
    assert typo.json()["detail"] == (
        "'connections' is required; connection: is not a known field (check the spelling)"
    )
    assert applied.status_code == 200
    assert applied.json() == [
        {"name": "prod", "kind": "created", "reset_triggers": [], "open_windows": 0}
    ]
    assert await listed(engine) == []  # a dry run
