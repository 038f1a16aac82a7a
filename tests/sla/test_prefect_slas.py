"""Prefect's deployment SLAs: the shapes Prefect users write load (and bad ones are named
by file, line and field), each kind maps onto a tripwire SLA that is violated as Prefect
says, a miss emits `prefect.sla.violation` beside `tripwire.sla.missed`, and applying a
deployment replaces its SLAs and no other's."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from alerts.signals import sla_labels
from events.errors import ApplyConflict
from events.model import Event
from sla.model import DurationSLA, FreshnessSLA
from sla.prefect_slas import (
    FrequencySla,
    LatenessSla,
    PrefectDeployment,
    TimeToCompletionSla,
    to_slas,
)
from tests.sla.conftest import EVENTS_SUBJECT, MONDAY_8, SLABench, minutes, states
from tests.support import published_on
from triggers.results import Result
from tripwire import definitions
from tripwire.definitions import load_text

DEPLOYMENT_ID = "prefect.deployment.7b0c7f5e-0f6a-4d0a-9d1e-000000000001"
FLOW_ID = "prefect.flow.7b0c7f5e-0f6a-4d0a-9d1e-000000000002"
RUN_ID = "7b0c7f5e-0f6a-4d0a-9d1e-00000000000a"


def flow_run(
    state: str,
    when: datetime,
    run: str = RUN_ID,
    deployment: str = "daily",
    flow: str = "etl",
) -> Event:
    """A flow-run state event as Prefect's server emits it (resource, related)."""
    return Event(
        occurred=when,
        event=f"prefect.flow-run.{state}",
        resource={
            "prefect.resource.id": f"prefect.flow-run.{run}",
            "prefect.resource.name": f"run-{run[-2:]}",
            "prefect.state-name": state,
        },
        related=[
            {
                "prefect.resource.id": FLOW_ID if flow == "etl" else f"prefect.flow.{flow}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow,
            },
            {
                "prefect.resource.id": DEPLOYMENT_ID
                if deployment == "daily"
                else f"prefect.deployment.{deployment}",
                "prefect.resource.role": "deployment",
                "prefect.resource.name": deployment,
            },
        ],
    )


async def apply(bench: SLABench, *deployments: dict[str, Any], prune: bool = False) -> list[Any]:
    wanted = [PrefectDeployment.model_validate(d) for d in deployments]
    changes = await definitions.apply(bench.db, {"deployments": wanted}, prune=prune)
    await bench.evaluator.reload()
    return [(c.name, c.kind.value) for c in changes["deployments"]]


def events(result: Result) -> list[dict[str, Any]]:
    return [
        orjson.loads(m.body) for m in result.messages if published_on(m.subject, EVENTS_SUBJECT)
    ]


def violation(result: Result) -> dict[str, Any]:
    (found,) = [e for e in events(result) if e["event"] == "prefect.sla.violation"]
    return found


# --- shapes ---------------------------------------------------------------------------

PREFECT_YAML = """\
name: etl
prefect-version: 3.8.0
build: null
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: /opt/etl
definitions:
  tags: &tags [nightly]
deployments:
  - name: daily
    entrypoint: flows/etl.py:etl
    work_pool: {name: k8s}
    tags: *tags
    schedules:
      - cron: "0 2 * * *"
    sla:
      - name: time-to-completion
        duration: 600
        severity: high
      - name: lateness
        within: PT10M
      - name: frequency
        stale_after: 90000
        severity: critical
        enabled: false
        labels: {team: data}
  - name: hourly
    entrypoint: flows/etl.py:etl
"""


def test_a_prefect_yaml_loads_its_deployments_slas_and_nothing_else() -> None:
    loaded = load_text(PREFECT_YAML, "prefect.yaml")
    assert loaded.ok, loaded.errors
    assert loaded.automations == []
    daily, hourly = loaded.deployments
    assert (daily.name, daily.flow, daily.deployment) == ("daily", None, "daily")
    assert hourly.sla is None  # no sla: leaves the deployment's SLAs alone
    completion, lateness, frequency = daily.sla or []
    assert isinstance(completion, TimeToCompletionSla)
    assert isinstance(lateness, LatenessSla)
    assert isinstance(frequency, FrequencySla)
    assert (completion.name, completion.severity) == ("time-to-completion", "high")
    assert completion.duration == timedelta(minutes=10)
    assert (lateness.within, lateness.severity) == (timedelta(minutes=10), "moderate")
    assert frequency.stale_after == timedelta(hours=25)
    assert (frequency.enabled, frequency.labels) == (False, {"team": "data"})
    # Without prefect-version it is still a project file by its name, and a definitions
    # file may hold the same section.
    assert load_text(PREFECT_YAML.replace("prefect-version: 3.8.0\n", ""), "prefect.yaml").ok
    section = load_text("deployments:\n  - name: etl/daily\n    sla: []\n", "d.yaml")
    assert section.ok, section.errors
    assert (section.deployments[0].flow, section.deployments[0].sla) == ("etl", [])


def test_labels_load_as_a_mapping_or_as_prefect_clouds_list() -> None:
    listed = PrefectDeployment.model_validate(
        {
            "name": "daily",
            "sla": [
                {"name": "f", "stale_after": 60, "labels": [{"label": "team", "value": "data"}]}
            ],
        }
    )
    assert listed.sla is not None
    assert listed.sla[0].labels == {"team": "data"}


@pytest.mark.parametrize(
    ("sla", "line", "field", "message"),
    [
        (
            "{name: x, severity: high}",
            3,
            "deployments[0].sla[0]",
            "needs one of duration (a time-to-completion SLA), within (lateness) or "
            "stale_after (frequency)",
        ),
        (
            "{name: x, duration: 60, within: 60}",
            3,
            "deployments[0].sla[0]",
            "gives both duration and within; a Prefect SLA is one kind: duration (time to "
            "completion), within (lateness) or stale_after (frequency)",
        ),
        ("{name: x, duration: 0}", 3, "deployments[0].sla[0].duration", "must be longer than 0"),
        (
            "{name: x, within: 60, severity: urgent}",
            3,
            "deployments[0].sla[0].severity",
            "Input should be 'minor', 'low', 'moderate', 'high' or 'critical'",
        ),
        (
            "{name: x, stale_after: 60, sevrity: high}",
            3,
            "deployments[0].sla[0].sevrity",
            "is not a known field (check the spelling)",
        ),
    ],
)
def test_a_bad_sla_is_named_by_file_line_and_field(
    sla: str, line: int, field: str, message: str
) -> None:
    text = f"deployments:\n  - name: etl/daily\n    sla:\n      - {sla}\n"
    errors = [str(e) for e in load_text(text, "d.yaml").errors]
    assert errors == [f"d.yaml:{line + 1}: {field}: {message}"]


def test_duplicate_names_and_prefects_spelling_are_refused() -> None:
    with pytest.raises(ValidationError, match="two SLAs are named 'x'"):
        PrefectDeployment.model_validate(
            {"name": "d", "sla": [{"name": "x", "duration": 1}, {"name": "x", "within": 1}]}
        )
    with pytest.raises(ValidationError, match="slas is not Prefect's key"):
        PrefectDeployment.model_validate({"name": "d", "slas": [{"name": "x", "duration": 1}]})


# --- mapping --------------------------------------------------------------------------


def test_each_kind_maps_onto_a_tripwire_sla_of_the_deployment() -> None:
    daily = PrefectDeployment.model_validate(
        {
            "name": "etl/daily",
            "sla": [
                {"name": "ttc", "duration": 600, "severity": "minor"},
                {"name": "late", "within": 300, "severity": "high"},
                {"name": "freq", "stale_after": 3600, "severity": "critical"},
            ],
        }
    )
    completion, lateness, frequency = to_slas(daily)
    assert isinstance(completion, DurationSLA)
    assert completion.name == "etl/daily:ttc"
    assert completion.start == ["prefect.flow-run.Running"]
    assert completion.expect == [
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.Cancelled",
    ]
    assert completion.within == timedelta(minutes=10)
    assert completion.for_each[0] == "prefect.resource.id"  # per flow run
    assert completion.match_related == [
        {"prefect.resource.role": "deployment", "prefect.resource.name": "daily"},
        {"prefect.resource.role": "flow", "prefect.resource.name": "etl"},
    ]
    assert isinstance(lateness, DurationSLA)
    assert lateness.start == ["prefect.flow-run.Late"]
    assert lateness.expect[0] == "prefect.flow-run.Running"
    assert lateness.within == timedelta(minutes=5)
    assert isinstance(frequency, FreshnessSLA)
    assert frequency.expect == ["prefect.flow-run.Completed"]
    assert frequency.every == timedelta(hours=1)
    assert "prefect.resource.id" not in frequency.for_each  # per deployment
    assert [s.severity for s in (completion, lateness, frequency)] == [
        "info",
        "warning",
        "critical",
    ]
    bare = PrefectDeployment.model_validate({"name": "daily", "sla": [{"name": "t", "within": 9}]})
    (only,) = to_slas(bare)
    assert only.match_related == [
        {"prefect.resource.role": "deployment", "prefect.resource.name": "daily"}
    ]


TTC = {"name": "etl/daily", "sla": [{"name": "ttc", "duration": 600, "severity": "high"}]}


async def test_a_run_longer_than_its_duration_violates_time_to_completion(
    bench: SLABench,
) -> None:
    assert await apply(bench, TTC) == [("etl/daily:ttc", "created")]
    await bench.send(flow_run("Running", MONDAY_8))
    assert states(await bench.due(MONDAY_8 + minutes(9))) == []
    missed = await bench.due(MONDAY_8 + minutes(10))
    names = [e["event"] for e in events(missed)]
    assert names == ["tripwire.sla.missed", "prefect.sla.violation"]
    event = violation(missed)
    assert event["resource"]["prefect.resource.id"] == f"prefect.flow-run.{RUN_ID}"
    related = {r["prefect.resource.role"]: r for r in event["related"]}
    assert related["deployment"]["prefect.resource.id"] == DEPLOYMENT_ID
    assert related["deployment"]["prefect.resource.name"] == "daily"
    assert related["flow"] == {
        "prefect.resource.id": FLOW_ID,
        "prefect.resource.role": "flow",
        "prefect.resource.name": "etl",
    }
    assert related["sla"]["prefect.resource.id"].startswith("prefect-cloud.sla.")
    assert related["sla"]["prefect.resource.name"] == "ttc"
    assert related["sla"]["prefect.sla.severity"] == "high"
    payload = event["payload"]
    assert payload["sla"]["name"] == "ttc"
    assert payload["sla"]["type"] == "time-to-completion"
    assert payload["sla"]["duration"] == 600
    assert payload["sla"]["owner_resource"] == DEPLOYMENT_ID
    assert payload["flow_run"] == {"id": RUN_ID, "name": "run-0a"}
    assert payload["deployment"] == {"id": DEPLOYMENT_ID.rpartition(".")[2], "name": "daily"}
    assert payload["violated_at"] == (MONDAY_8 + minutes(10)).isoformat()
    assert payload["tripwire_sla"] == "etl/daily:ttc"
    assert states(await bench.due(MONDAY_8 + minutes(30))) == []  # once

    # A run that ends in time, in any terminal state, does not violate it.
    other = RUN_ID[:-1] + "b"
    await bench.send(flow_run("Running", MONDAY_8 + minutes(20), run=other))
    bench.clock.current = MONDAY_8 + minutes(25)
    await bench.send(flow_run("Failed", MONDAY_8 + minutes(25), run=other))
    assert states(await bench.due(MONDAY_8 + minutes(40))) == []


async def test_runs_of_other_deployments_or_flows_do_not_count(bench: SLABench) -> None:
    await apply(bench, TTC)
    await bench.send(
        flow_run("Running", MONDAY_8, deployment="weekly"),
        flow_run("Running", MONDAY_8, run=RUN_ID[:-1] + "c", flow="billing"),
    )
    assert states(await bench.due(MONDAY_8 + minutes(11))) == []


async def test_a_run_not_started_within_violates_lateness_and_recovers(bench: SLABench) -> None:
    late = {"name": "etl/daily", "sla": [{"name": "late", "within": "5m", "labels": {"a": "b"}}]}
    await apply(bench, late)
    await bench.send(flow_run("Late", MONDAY_8))  # Prefect marks it Late past its start
    missed = await bench.due(MONDAY_8 + minutes(5))
    assert states(missed) == ["missed", "prefect.sla.violation"]
    payload = violation(missed)["payload"]
    assert (payload["sla"]["within"], payload["sla"]["labels"]) == (300, {"a": "b"})
    bench.clock.current = MONDAY_8 + minutes(7)
    assert states(await bench.send(flow_run("Running", MONDAY_8 + minutes(7)))) == ["recovered"]

    # Started in time: nothing.
    other = RUN_ID[:-1] + "d"
    await bench.send(flow_run("Late", MONDAY_8 + minutes(10), run=other))
    bench.clock.current = MONDAY_8 + minutes(12)
    await bench.send(flow_run("Running", MONDAY_8 + minutes(12), run=other))
    assert states(await bench.due(MONDAY_8 + minutes(20))) == []


async def test_no_completed_run_within_stale_after_violates_frequency(bench: SLABench) -> None:
    hourly = {"name": "etl/daily", "sla": [{"name": "freq", "stale_after": 3600}]}
    await apply(bench, hourly)
    await bench.send(flow_run("Completed", MONDAY_8))
    bench.clock.current = MONDAY_8 + minutes(55)
    second = RUN_ID[:-1] + "e"
    await bench.send(flow_run("Completed", MONDAY_8 + minutes(55), run=second))
    assert states(await bench.due(MONDAY_8 + minutes(60))) == []  # the clock moved on
    assert states(await bench.due(MONDAY_8 + minutes(114))) == []
    missed = await bench.due(MONDAY_8 + minutes(115))
    assert states(missed) == ["missed", "prefect.sla.violation"]
    event = violation(missed)
    # About the last run that completed, "the previous one".
    assert event["resource"]["prefect.resource.id"] == f"prefect.flow-run.{second}"
    assert event["payload"]["sla"]["stale_after"] == 3600
    assert event["payload"]["last_seen"] == (MONDAY_8 + minutes(55)).isoformat()


async def test_severity_and_labels_reach_the_alert_labels(bench: SLABench) -> None:
    sla = {"name": "ttc", "duration": 60, "severity": "critical", "labels": {"team": "data"}}
    await apply(bench, {"name": "etl/daily", "sla": [sla]})
    await bench.send(flow_run("Running", MONDAY_8))
    missed = await bench.due(MONDAY_8 + minutes(1))
    (tripwire_event,) = [e for e in events(missed) if e["event"] == "tripwire.sla.missed"]
    labels = sla_labels(tripwire_event["payload"], "missed")
    assert labels["team"] == "data"
    assert labels["prefect.sla.severity"] == "critical"
    assert labels["severity"] == "critical"
    assert tripwire_event["resource"]["tripwire.sla.severity"] == "critical"


# --- apply ----------------------------------------------------------------------------


async def test_applying_a_deployment_replaces_its_slas_and_no_others(bench: SLABench) -> None:
    first = {
        "name": "etl/daily",
        "sla": [{"name": "ttc", "duration": 600}, {"name": "late", "within": 60}],
    }
    weekly = {"name": "weekly", "sla": [{"name": "freq", "stale_after": "7d"}]}
    assert await apply(bench, first, weekly) == [
        ("etl/daily:ttc", "created"),
        ("etl/daily:late", "created"),
        ("weekly:freq", "created"),
    ]
    second = {
        "name": "etl/daily",
        "sla": [{"name": "ttc", "duration": 900}, {"name": "freq", "stale_after": 60}],
    }
    assert await apply(bench, second) == [
        ("etl/daily:ttc", "updated"),
        ("etl/daily:freq", "created"),
        ("etl/daily:late", "deleted"),
    ]
    names = sorted(s.sla.name for s in await bench.slas.all())
    assert names == ["etl/daily:freq", "etl/daily:ttc", "weekly:freq"]
    # Without sla:, a deployment's SLAs are left alone; with [], they go.
    assert await apply(bench, {"name": "weekly"}) == []
    assert await apply(bench, {"name": "weekly", "sla": []}) == [("weekly:freq", "deleted")]
    # --prune: deployments the files do not give lose theirs.
    hourly = {"name": "hourly", "sla": [{"name": "t", "duration": 5}]}
    assert await apply(bench, hourly, prune=True) == [
        ("hourly:t", "created"),
        ("etl/daily:freq", "deleted"),
        ("etl/daily:ttc", "deleted"),
    ]


async def test_slas_of_their_own_and_of_deployments_keep_apart(bench: SLABench) -> None:
    await apply(bench, TTC)
    plain = {
        "name": "own",
        "kind": "freshness",
        "expect": ["x"],
        "every": "1h",
    }
    await bench.apply(plain)
    # Pruning the SLAs of their own leaves the deployments' alone.
    changes = await bench.slas.apply([], prune=True)
    assert [(c.name, c.kind.value) for c in changes] == [("own", "deleted")]
    assert [s.sla.name for s in await bench.slas.all()] == ["etl/daily:ttc"]
    with pytest.raises(ApplyConflict, match="an SLA of the Prefect deployment etl/daily"):
        await bench.apply({**plain, "name": "etl/daily:ttc"})
    (made,) = to_slas(PrefectDeployment.model_validate(TTC))
    with pytest.raises(ApplyConflict, match="declare those under deployments:"):
        await bench.slas.apply([made])
