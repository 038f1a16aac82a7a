"""The metric trigger model: Prefect's export loads unchanged, tripwire's extensions (for_each,
spans from 10 s) load, and mistakes name the field."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from typing import Any

import pytest

from tests.support import FIXTURES, require_venv
from triggers.automation import Automation
from triggers.model import MetricName, MetricOperator, MetricTrigger
from tripwire.definitions import load_text


def test_prefects_export_loads_unchanged() -> None:
    exported = json.loads((FIXTURES / "metric-triggers.json").read_text())
    slow, late = (Automation.model_validate(a) for a in exported)
    assert isinstance(slow.trigger, MetricTrigger)
    assert slow.trigger.metric.name is MetricName.duration
    assert slow.trigger.metric.operator is MetricOperator.gt
    assert slow.trigger.metric.threshold == 30
    assert slow.trigger.metric.range == timedelta(seconds=300)
    assert slow.trigger.match_related == [
        {"prefect.resource.role": "flow", "prefect.resource.name": "etl-*"}
    ]
    assert str(slow.id) == exported[0]["id"]
    assert isinstance(late.trigger, MetricTrigger)
    assert late.trigger.metric.firing_for == timedelta(seconds=600)
    # Written back, the trigger is Prefect's JSON again, field for field.
    for automation, original in zip((slow, late), exported, strict=True):
        written = automation.trigger.model_dump(mode="json", exclude={"id", "for_each"})
        assert written == original["trigger"] | {
            "match_related": [original["trigger"]["match_related"]]
        }


def test_prefects_own_models_write_what_loads() -> None:
    venv = require_venv(".venv-prefect", "prefect")
    script = FIXTURES / "metric_export.py"
    out = subprocess.run(
        [str(venv / "bin" / "python"), str(script)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    fresh = json.loads(out)
    assert fresh == json.loads((FIXTURES / "metric-triggers.json").read_text())
    assert [Automation.model_validate(a).name for a in fresh] == [
        "etl-runs-slow",
        "kubernetes-runs-late",
    ]


def test_prefects_documented_examples_load() -> None:
    # Prefect's docs use firing_for 0, under its own 5-minute floor: accepted here.
    trigger = MetricTrigger.model_validate(
        {
            "type": "metric",
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {
                "prefect.resource.id": "prefect.tag.production",
                "prefect.resource.role": "tag",
            },
            "metric": {
                "name": "successes",
                "threshold": 0.9,
                "operator": "<",
                "range": 3600,
                "firing_for": 0,
            },
        }
    )
    assert trigger.metric.firing_for == timedelta(0)
    assert trigger.posture == "Metric"


def test_spans_below_prefects_floor_and_for_each() -> None:
    trigger = MetricTrigger.model_validate(
        {
            "metric": {"name": "lateness", "threshold": 5, "operator": ">=", "range": "10s"},
            "for_each": ["related:deployment:prefect.resource.id"],
        }
    )
    assert trigger.metric.range == timedelta(seconds=10)
    assert trigger.metric.firing_for == timedelta(seconds=300)  # Prefect's default
    assert trigger.for_each == ["related:deployment:prefect.resource.id"]


def definition(**query: Any) -> str:
    metric = {"name": "duration", "threshold": 30, "operator": ">"} | query
    return json.dumps(
        [{"name": "slow", "trigger": {"type": "metric", "metric": metric}, "actions": []}]
    )


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"operator": "=="}, "trigger.metric.operator", "'<', '<=', '>' or '>='"),
        ({"name": "latency"}, "trigger.metric.name", "'lateness', 'duration' or 'successes'"),
        ({"range": 5}, "trigger.metric.range", "at least 10s"),
        ({"firing_for": -1}, "trigger.metric.firing_for", "must not be negative"),
        ({"threshold": "high"}, "trigger.metric.threshold", "valid number"),
        ({"window": 60}, "trigger.metric.window", "is not a known field"),
    ],
)
def test_mistakes_name_the_field(query: dict[str, Any], field: str, words: str) -> None:
    loaded = load_text(definition(**query), "slow.json")
    (error,) = loaded.errors
    assert str(error).startswith(f"slow.json:1: {field}: ")
    assert words in str(error)


def test_a_metric_trigger_has_no_posture_but_metric() -> None:
    loaded = load_text(
        json.dumps(
            [
                {
                    "name": "slow",
                    "trigger": {
                        "type": "metric",
                        "posture": "Reactive",
                        "metric": {"name": "duration", "threshold": 1, "operator": ">"},
                    },
                }
            ]
        ),
        "slow.json",
    )
    (error,) = loaded.errors
    assert "trigger.posture" in str(error)
