"""`tripwire apply -f prefect.yaml`: a Prefect project file's deployment triggers become
automations that run their deployment, named as `prefect deploy` names them, and applying
the file again replaces each deployment's automations (created, updated, deleted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import Running
from tests.tripwire.test_cli_automations import invoke

PREFECT_YAML = """\
name: etl
prefect-version: 3.8.0
deployments:
  - name: daily
    entrypoint: flows/etl.py:etl
    work_pool: {name: k8s}
    sla:
      - name: time-to-completion
        duration: 600
    triggers:
      - enabled: true
        match:
          prefect.resource.id: warehouse.orders
        expect:
          - warehouse.orders.loaded
        parameters:
          rows: "{{ event.payload.rows }}"
      - name: daily-after-both-feeds
        require: all
        within: 3600
        triggers:
          - expect: [feeds.a.landed]
          - expect: [feeds.b.landed]
        job_variables: {image: etl:2}
        schedule_after: 600
  - name: hourly
    entrypoint: flows/etl.py:etl
    triggers:
      - posture: Metric
        metric: {name: duration, threshold: 600, operator: ">", range: 900, firing_for: 300}
        match: {prefect.resource.id: prefect.flow-run.*}
"""


async def automation(engine: Running, name: str) -> dict[str, Any]:
    """An automation as the API shows it."""
    async with engine.client() as client:
        response = await client.get(f"/api/automations/{name}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def names(engine: Running) -> list[str]:
    async with engine.client() as client:
        listed = (await client.get("/api/automations")).json()
    return sorted(a["name"] for a in listed)


async def test_a_prefect_yaml_applies_its_deployments_triggers(
    engine: Running, tmp_path: Path
) -> None:
    project = tmp_path / "prefect.yaml"
    project.write_text(PREFECT_YAML)
    code, out, err = await invoke("validate", "-f", str(project))
    assert code == 0, err
    assert out.strip() == "ok: 0 automations, 2 deployments in 1 file(s)"
    code, out, err = await invoke("apply", "-f", str(project), "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == [
        "created SLA daily:time-to-completion",
        "created daily__automation_1",
        "created daily-after-both-feeds",
        "created hourly__automation_1",
    ]

    first = await automation(engine, "daily__automation_1")
    assert first["trigger"]["type"] == "event"
    assert first["trigger"]["expect"] == ["warehouse.orders.loaded"]
    assert first["actions"] == [
        {
            "type": "run-deployment",
            "source": "selected",
            "deployment_id": None,
            "deployment": "daily",
            "connection": None,
            "parameters": {"rows": "{{ event.payload.rows }}"},
            "job_variables": None,
            "schedule_after": 0.0,
            "tags": [],
            "retries": first["actions"][0]["retries"],
            "retry_delay": first["actions"][0]["retry_delay"],
        }
    ]
    assert first["prefect"] == {"deployment": "daily", "trigger": 1}
    both = await automation(engine, "daily-after-both-feeds")
    assert both["trigger"]["type"] == "compound"
    assert both["trigger"]["require"] == "all"
    (run,) = both["actions"]
    assert (run["job_variables"], run["schedule_after"]) == ({"image": "etl:2"}, 600.0)
    hourly = await automation(engine, "hourly__automation_1")
    assert hourly["trigger"]["type"] == "metric"
    assert hourly["actions"][0]["deployment"] == "hourly"

    code, out, _ = await invoke("apply", "-f", str(project), "--api", engine.url)
    assert out.splitlines() == [
        "unchanged SLA daily:time-to-completion",
        "unchanged daily__automation_1",
        "unchanged daily-after-both-feeds",
        "unchanged hourly__automation_1",
    ]

    # Re-applying replaces a deployment's automations, as `prefect deploy` does: the
    # compound trigger goes, the event trigger's parameters change; hourly's are dropped
    # with `triggers: []`.
    start = PREFECT_YAML.index("      - name: daily-after-both-feeds")
    end = PREFECT_YAML.index("  - name: hourly")
    changed = (PREFECT_YAML[:start] + PREFECT_YAML[end:]).replace(
        "event.payload.rows", "event.payload.count"
    )
    changed = changed[: changed.index("    triggers:\n      - posture")] + "    triggers: []\n"
    project.write_text(changed)
    code, out, _ = await invoke("apply", "-f", str(project), "--dry-run", "--api", engine.url)
    assert out.splitlines() == [
        "unchanged SLA daily:time-to-completion",
        "would update daily__automation_1 (trigger state kept)",
        "would delete daily-after-both-feeds",
        "would delete hourly__automation_1",
        "dry run: nothing was changed",
    ]
    code, out, err = await invoke("apply", "-f", str(project), "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == [
        "unchanged SLA daily:time-to-completion",
        "updated daily__automation_1 (trigger state kept)",
        "deleted daily-after-both-feeds",
        "deleted hourly__automation_1",
    ]
    assert await names(engine) == ["daily__automation_1"]
    updated = await automation(engine, "daily__automation_1")
    assert updated["actions"][0]["parameters"] == {"rows": "{{ event.payload.count }}"}


async def test_a_deployment_without_triggers_keeps_them_and_prune_drops_the_unnamed(
    engine: Running, tmp_path: Path
) -> None:
    project = tmp_path / "prefect.yaml"
    project.write_text(PREFECT_YAML)
    code, _, err = await invoke("apply", "-f", str(project), "--api", engine.url)
    assert code == 0, err

    # A definitions file naming daily without triggers: its automations stay.
    only_sla = tmp_path / "slas.yaml"
    only_sla.write_text(
        "deployments:\n  - name: daily\n    sla:\n      - name: time-to-completion\n"
        "        duration: 600\n"
    )
    code, out, err = await invoke("apply", "-f", str(only_sla), "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == ["unchanged SLA daily:time-to-completion"]
    assert await names(engine) == [
        "daily-after-both-feeds",
        "daily__automation_1",
        "hourly__automation_1",
    ]

    # Plain automations, applied and pruned, leave the deployments' automations alone.
    own = tmp_path / "own.yaml"
    own.write_text(
        "automations:\n  - name: mine\n    trigger: {expect: [x]}\n"
        "    actions: [{type: do-nothing}]\n"
    )
    code, out, err = await invoke("apply", "-f", str(own), "--prune", "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == ["created mine"]

    # With --prune, the automations of deployments the files do not name go.
    code, out, err = await invoke("apply", "-f", str(only_sla), "--prune", "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == [
        "unchanged SLA daily:time-to-completion",
        "deleted hourly__automation_1",
    ]
    assert await names(engine) == ["daily-after-both-feeds", "daily__automation_1", "mine"]


async def test_trigger_automations_and_plain_ones_do_not_take_each_others_names(
    engine: Running, tmp_path: Path
) -> None:
    project = tmp_path / "prefect.yaml"
    project.write_text(PREFECT_YAML)
    code, _, err = await invoke("apply", "-f", str(project), "--api", engine.url)
    assert code == 0, err

    own = tmp_path / "own.yaml"
    own.write_text("automations:\n  - name: daily-after-both-feeds\n    trigger: {expect: [x]}\n")
    code, _, err = await invoke("apply", "-f", str(own), "--api", engine.url)
    assert code == 1
    assert "'daily-after-both-feeds' is the automation of a trigger of the Prefect " in err
    assert "deployment daily; give this one another name" in err

    other = tmp_path / "other.yaml"
    other.write_text(
        "deployments:\n  - name: weekly\n    triggers:\n"
        "      - name: daily-after-both-feeds\n        expect: [x]\n"
    )
    code, _, err = await invoke("apply", "-f", str(other), "--api", engine.url)
    assert code == 1
    assert (
        "the automation 'daily-after-both-feeds' of trigger 1 of the Prefect deployment "
        "weekly belongs to a trigger of the Prefect deployment daily" in err
    )
    assert await names(engine) == [
        "daily-after-both-feeds",
        "daily__automation_1",
        "hourly__automation_1",
    ]


async def test_bad_triggers_in_a_prefect_yaml_name_their_line_and_field(tmp_path: Path) -> None:
    project = tmp_path / "prefect.yaml"
    project.write_text(
        PREFECT_YAML.replace(
            "          - warehouse.orders.loaded\n",
            "          - warehouse.orders.loaded\n        schedule_after: -60\n",
        )
        .replace("        schedule_after: 600\n", "        schedule_after: 600\n        limit: 3\n")
        .replace("name: duration, threshold", "name: runtime, threshold")
    )
    code, _, err = await invoke("validate", "-f", str(project))
    assert code == 1
    assert err.splitlines() == [
        f"{project}:16: deployments[0].triggers[0].schedule_after: Input should be greater "
        "than or equal to 0 seconds",
        f"{project}:27: deployments[0].triggers[1].limit: is not a known field (check the "
        "spelling)",
        f"{project}:32: deployments[1].triggers[0].metric.name: Input should be 'lateness', "
        "'duration' or 'successes'",
        "error: 3 problem(s); 0 automations in 1 file(s) loaded",
    ]


async def test_trigger_names_must_make_unique_automation_names(tmp_path: Path) -> None:
    project = tmp_path / "prefect.yaml"
    project.write_text(
        PREFECT_YAML.replace("name: daily-after-both-feeds", "name: daily__automation_1")
    )
    code, _, err = await invoke("validate", "-f", str(project))
    assert code == 1
    assert err.splitlines()[0] == (
        f"{project}:4: deployments[0]: triggers[0] and triggers[1] are both the automation "
        "'daily__automation_1'; automation names are unique"
    )


async def test_tripwire_test_replays_events_through_a_prefect_yamls_triggers(
    tmp_path: Path,
) -> None:
    project = tmp_path / "prefect.yaml"
    project.write_text(PREFECT_YAML)
    recorded = tmp_path / "events.json"
    loaded = {
        "occurred": "2026-11-21T09:00:00Z",
        "event": "warehouse.orders.loaded",
        "resource": {"prefect.resource.id": "warehouse.orders"},
        "payload": {"rows": 42},
    }
    recorded.write_text(json.dumps([loaded]))
    code, out, err = await invoke("test", "-f", str(project), "--events", str(recorded))
    assert code == 0, err
    assert out.splitlines()[0].startswith("2026-11-21 09:00:00  daily__automation_1  triggered")
