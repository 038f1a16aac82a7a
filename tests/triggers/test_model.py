"""Trigger definitions: Prefect's exports load unchanged; mistakes are named clearly."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from tests.support import FIXTURES
from triggers.model import (
    CompoundTrigger,
    EventTrigger,
    MetricTrigger,
    Posture,
    SequenceTrigger,
    Trigger,
)

triggers: TypeAdapter[Any] = TypeAdapter(Trigger)


def exported(name: str) -> dict[str, Any]:
    automation: dict[str, Any] = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())[0]
    return automation


def test_prefect_exports_load_unchanged() -> None:
    reactive = triggers.validate_python(exported("etl-orders-keeps-failing")["trigger"])
    assert isinstance(reactive, EventTrigger)
    assert (reactive.threshold, reactive.within, reactive.for_each) == (
        3,
        timedelta(minutes=10),
        ["prefect.resource.id"],
    )
    assert reactive.match_related == [
        {"prefect.resource.role": "flow", "prefect.resource.name": "etl-orders"}
    ]
    proactive = triggers.validate_python(exported("sales-refresh-expected-hourly")["trigger"])
    assert proactive.posture is Posture.Proactive
    assert proactive.after == ["prefect.flow-run.Completed"]
    compound = triggers.validate_python(exported("compound-both-etls-done")["trigger"])
    assert isinstance(compound, CompoundTrigger)
    assert compound.require == "all"
    assert [type(t) for t in compound.triggers] == [EventTrigger, EventTrigger]


def test_the_json_export_loads_the_same_as_the_yaml() -> None:
    import json

    for name in (
        "etl-orders-keeps-failing",
        "compound-both-etls-done",
        "sales-refresh-expected-hourly",
    ):
        from_json = json.loads((FIXTURES / f"{name}.json").read_text())[0]["trigger"]
        assert triggers.validate_python(from_json) == triggers.validate_python(
            exported(name)["trigger"]
        )


@pytest.mark.parametrize(
    ("written", "seconds"), [("10m", 600), ("2h", 7200), (90, 90), ("45s", 45), (600.0, 600)]
)
def test_within_takes_seconds_or_human_durations(written: object, seconds: int) -> None:
    assert EventTrigger(within=written).within == timedelta(seconds=seconds)


def test_match_related_takes_one_spec_or_a_list() -> None:
    one = EventTrigger.model_validate({"match_related": {"prefect.resource.role": "flow"}})
    assert one.match_related == [{"prefect.resource.role": "flow"}]


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        ({"type": "event", "where": "payload.rows <"}, "where", "position 14"),
        ({"type": "event", "posture": "Proactive", "within": 5}, "", "at least 10s"),
        ({"type": "event", "threshold": 0}, "threshold", "greater than or equal to 1"),
        ({"type": "event", "within": "-5"}, "within", ""),
        ({"type": "event", "expects": ["x"]}, "expects", "Extra inputs"),
        ({"type": "compound", "require": 3, "triggers": [{"type": "event"}]}, "", "require is 3"),
        ({"type": "sometimes"}, "", "event"),
    ],
)
def test_mistakes_name_the_field(definition: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as error:
        triggers.validate_python(definition)
    first = error.value.errors()[0]
    assert field in ".".join(str(p) for p in first["loc"])
    assert words in str(error.value)


def test_nested_compound_and_sequence() -> None:
    nested = triggers.validate_python(
        {
            "type": "sequence",
            "within": "1h",
            "triggers": [
                {"type": "event", "expect": ["a"]},
                {
                    "type": "compound",
                    "require": 1,
                    "triggers": [{"type": "event", "expect": ["b"]}, {"type": "event"}],
                },
            ],
        }
    )
    assert nested.within == timedelta(hours=1)
    assert nested.triggers[1].require == 1


@pytest.mark.parametrize(
    ("trigger", "kind"),
    [
        ({"match": {"prefect.resource.id": "prefect.flow-run.*"}, "expect": ["x"]}, EventTrigger),
        ({"posture": "Proactive", "expect": ["x"], "within": 60}, EventTrigger),
        ({"triggers": [{"expect": ["a"]}, {"expect": ["b"]}], "require": "all"}, CompoundTrigger),
        ({"triggers": [{"expect": ["a"]}, {"expect": ["b"]}], "within": 60}, SequenceTrigger),
        (
            {"posture": "Metric", "metric": {"name": "duration", "threshold": 60, "operator": ">"}},
            MetricTrigger,
        ),
    ],
)
def test_a_trigger_without_type_is_told_as_prefect_tells_it(trigger: Any, kind: type) -> None:
    # Hand-written Prefect files (a deployment's triggers in prefect.yaml) leave type out.
    loaded = TypeAdapter(Trigger).validate_python(trigger)

    assert type(loaded) is kind
    for child in getattr(loaded, "triggers", []):
        assert type(child) is EventTrigger


def test_an_unknown_trigger_type_names_the_types_there_are() -> None:
    with pytest.raises(ValidationError, match="'event', 'metric', 'compound', 'sequence'"):
        TypeAdapter(Trigger).validate_python({"type": "threshold", "expect": ["x"]})
