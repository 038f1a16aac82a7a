"""Prefect's deployment triggers: each kind loads from a prefect.yaml (with and without
`type`), becomes the automation `prefect deploy` would make (its name, its trigger, a
run-deployment of the deployment with the trigger's parameters), and, in a running engine,
an event fires it and a real Prefect 3.8 server runs the deployment found by its name
alone; a name two flows' deployments share fails without a retry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from actions.model import RunDeployment
from sla.prefect_slas import PrefectDeployment
from sla.prefect_triggers import (
    DeploymentCompoundTrigger,
    DeploymentEventTrigger,
    DeploymentMetricTrigger,
    DeploymentSequenceTrigger,
    to_automations,
)
from tests.actions import conftest as actions_conftest
from tests.actions import prefect_server as prefect_fixtures
from tests.actions.prefect_server import PrefectObjects, PrefectServer
from tests.support import Running, StartEngine, eventually
from tests.tripwire.test_cli_automations import invoke
from triggers.model import CompoundTrigger, EventTrigger, MetricTrigger, SequenceTrigger
from tripwire.definitions import load_text

# Each kind as a Prefect user writes it, first without `type` (told as Prefect tells it),
# then with it.
PREFECT_YAML = """\
name: etl
prefect-version: 3.8.0
deployments:
  - name: nightly
    entrypoint: flows/etl.py:etl
    triggers:
      - match: {prefect.resource.id: warehouse.orders}
        expect: [warehouse.orders.loaded]
        parameters: {rows: "{{ event.payload.rows }}", source: warehouse}
      - posture: Metric
        metric: {name: duration, threshold: 600, operator: ">", range: 900, firing_for: 300}
      - require: any
        triggers: [{expect: [feeds.a]}, {expect: [feeds.b]}]
      - name: after-a-then-b
        triggers: [{expect: [feeds.a]}, {expect: [feeds.b]}]
        within: 3600
        job_variables: {image: "etl:2"}
        schedule_after: PT10M
        enabled: false
        description: runs after both feeds
      - type: event
        posture: Proactive
        after: [prefect.flow-run.Running]
        expect: [prefect.flow-run.Completed]
        within: 600
      - type: metric
        metric: {name: successes, threshold: 0.5, operator: "<"}
      - type: compound
        require: 1
        triggers: [{expect: [feeds.a]}]
      - type: sequence
        triggers: [{expect: [feeds.a]}]
"""


def deployment(text: str = PREFECT_YAML) -> PrefectDeployment:
    loaded = load_text(text, "prefect.yaml")
    assert loaded.ok, [str(e) for e in loaded.errors]
    (found,) = loaded.deployments
    assert isinstance(found, PrefectDeployment)
    return found


def test_each_kind_loads_with_and_without_type() -> None:
    triggers = deployment().triggers
    assert triggers is not None
    assert [type(t) for t in triggers] == [
        DeploymentEventTrigger,
        DeploymentMetricTrigger,
        DeploymentCompoundTrigger,
        DeploymentSequenceTrigger,
        DeploymentEventTrigger,
        DeploymentMetricTrigger,
        DeploymentCompoundTrigger,
        DeploymentSequenceTrigger,
    ]
    first, fourth = triggers[0], triggers[3]
    assert first.parameters == {"rows": "{{ event.payload.rows }}", "source": "warehouse"}
    assert (first.name, first.enabled, first.job_variables) == (None, True, None)
    assert fourth.schedule_after == timedelta(minutes=10)
    assert (fourth.job_variables, fourth.enabled) == ({"image": "etl:2"}, False)


def test_each_trigger_becomes_the_automation_prefect_deploy_makes() -> None:
    found = deployment()
    automations = to_automations(found.name, found.triggers or [])

    assert [a.name for a in automations] == [
        "nightly__automation_1",
        "nightly__automation_2",
        "nightly__automation_3",
        "after-a-then-b",
        "nightly__automation_5",
        "nightly__automation_6",
        "nightly__automation_7",
        "nightly__automation_8",
    ]
    assert [type(a.trigger) for a in automations] == [
        EventTrigger,
        MetricTrigger,
        CompoundTrigger,
        SequenceTrigger,
        EventTrigger,
        MetricTrigger,
        CompoundTrigger,
        SequenceTrigger,
    ]
    first = automations[0]
    assert first.trigger == EventTrigger(
        match={"prefect.resource.id": "warehouse.orders"}, expect=["warehouse.orders.loaded"]
    )
    assert first.actions == [
        RunDeployment(
            deployment="nightly",
            parameters={"rows": "{{ event.payload.rows }}", "source": "warehouse"},
        )
    ]
    assert first.prefect is not None
    assert (first.prefect.deployment, first.prefect.trigger) == ("nightly", 1)
    fourth = automations[3]
    assert (fourth.description, fourth.enabled) == ("runs after both feeds", False)
    assert fourth.actions == [
        RunDeployment(
            deployment="nightly",
            job_variables={"image": "etl:2"},
            schedule_after=timedelta(minutes=10),
        )
    ]
    assert isinstance(fourth.trigger, SequenceTrigger)
    assert fourth.trigger.within == timedelta(hours=1)


def test_a_flow_and_deployment_name_runs_that_flows_deployment() -> None:
    found = PrefectDeployment.model_validate(
        {"name": "etl/nightly", "triggers": [{"expect": ["x"]}]}
    )
    (automation,) = to_automations(found.name, found.triggers or [])
    assert automation.name == "etl/nightly__automation_1"
    assert automation.actions == [RunDeployment(deployment="etl/nightly")]


# In a running engine, against a real Prefect server

# The actions tests' fixtures: a flow with a deployment on the session's Prefect server.
http = actions_conftest.http
prefect_objects = prefect_fixtures.prefect_objects

LIVE_YAML = """\
name: etl
prefect-version: 3.8.0
deployments:
  - name: {deployment}
    entrypoint: flows/etl.py:etl
    triggers:
      - match: {{prefect.resource.id: warehouse.orders}}
        expect: [warehouse.orders.loaded]
        parameters: {{rows: "{{{{ event.payload.rows }}}}"}}
"""


async def actions_of(running: Running) -> list[dict[str, Any]]:
    async with running.client() as client:
        listed: list[dict[str, Any]] = (await client.get("/api/actions")).json()
    return listed


@pytest.mark.prefect
@pytest.mark.timeout(120)
async def test_an_event_fires_the_trigger_and_prefect_runs_the_deployment_by_name(
    start_engine: StartEngine,
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
    tmp_path: Path,
) -> None:
    objects = prefect_objects
    running = await start_engine(allow_private_urls=True, prefect_api_url=prefect_server.url)
    project = tmp_path / "prefect.yaml"
    project.write_text(LIVE_YAML.format(deployment=objects.deployment_name))
    code, out, err = await invoke("apply", "-f", str(project), "--api", running.url)
    assert code == 0, err
    automation = f"{objects.deployment_name}__automation_1"
    assert out.splitlines() == [f"created {automation}"]
    await running.engine.pipeline.reload()

    loaded = {
        "event": "warehouse.orders.loaded",
        "resource": {"prefect.resource.id": "warehouse.orders"},
        "payload": {"rows": 42},
    }
    async with running.client() as client:
        assert (await client.post("/api/events", json=loaded)).status_code == 202

    async def ran() -> list[dict[str, Any]]:
        return await objects.runs_of_deployment()

    (flow_run,) = await eventually(ran, 30, "a flow run of the deployment")
    assert flow_run["parameters"] == {"rows": 42}  # the template kept the payload's type

    async def done() -> list[dict[str, Any]]:
        return [a for a in await actions_of(running) if a["status"] == "succeeded"]

    (action,) = await eventually(done, 30, "the run-deployment action succeeded")
    assert action["automation_name"] == automation
    assert action["action_type"] == "run-deployment"

    # Another flow gets a deployment of the same name: the name alone no longer says which
    # to run, so the action fails at once, naming both flows.
    other = await objects.post("/flows/", {"name": f"{objects.flow_name}-backfill"})
    await objects.post("/deployments/", {"name": objects.deployment_name, "flow_id": other["id"]})
    async with running.client() as client:
        assert (await client.post("/api/events", json=loaded)).status_code == 202

    async def failed() -> list[dict[str, Any]]:
        return [a for a in await actions_of(running) if a["status"] == "failed"]

    (refused,) = await eventually(failed, 30, "the second run-deployment action failed")
    assert refused["attempts"] == 1
    assert refused["last_error"] == (
        f"several flows have a deployment named {objects.deployment_name} "
        f"({objects.flow_name}, {objects.flow_name}-backfill) on {prefect_server.url}: name "
        f"it as flow/deployment, e.g. {objects.flow_name}/{objects.deployment_name}"
    )
    assert len(await objects.runs_of_deployment()) == 1
