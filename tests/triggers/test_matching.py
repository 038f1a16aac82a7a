"""Every matching rule, on real Prefect events where they fit."""

from __future__ import annotations

from typing import Any

import pytest

from events.model import Event, ReceivedEvent
from tests.support import fixture_events
from triggers.matching import (
    arms,
    bucket_key,
    covers,
    expects,
    glob_matches,
    label_value,
    resource_matches,
    where_holds,
)
from triggers.model import EventTrigger


def captured(name: str, flow: str) -> ReceivedEvent:
    for raw in fixture_events():
        event = ReceivedEvent.model_validate(raw)
        roles = {r.role: r.name for r in event.related}
        if event.event == name and roles.get("flow") == flow:
            return event
    raise LookupError(name)


@pytest.mark.parametrize(
    ("actual", "pattern", "expected"),
    [
        ("prefect.flow-run.abc", "prefect.flow-run.*", True),
        ("prefect.flow-run.abc", "*.flow-run.*", True),
        ("prefect.flow-run.abc", "prefect.*.abc", True),
        ("prefect.flow-run.abc", "prefect.task-run.*", False),
        ("etl-orders", "etl-orders", True),
        ("etl-orders", "etl", False),
        ("a.b", "a?b", True),  # shell-style, as Prefect: ? and [...] too
        ("x1", "x[12]", True),
        ("Prefect.flow-run.abc", "prefect.*", False),  # case-sensitive
    ],
)
def test_globs_are_shell_style_and_case_sensitive(
    actual: str, pattern: str, expected: bool
) -> None:
    assert glob_matches(actual, pattern) is expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"prefect.resource.name": "etl-orders"}, True),
        ({"prefect.resource.name": ["etl-sales", "etl-orders"]}, True),  # a list is ORed
        ({"prefect.resource.name": "etl-*"}, True),
        ({"prefect.resource.name": "!etl-sales"}, True),
        ({"prefect.resource.name": "!etl-*"}, False),
        ({"prefect.resource.name": ["!etl-sales", "!etl-orders"]}, False),  # negations all hold
        ({"prefect.resource.name": ["etl-*", "!etl-orders"]}, False),
        ({"prefect.resource.role": "flow", "prefect.resource.name": "etl-orders"}, True),  # ANDed
        ({"prefect.resource.role": "deployment", "prefect.resource.name": "etl-orders"}, False),
        ({"team": "data"}, False),  # a missing label never matches
        ({"team": "!data"}, False),  # not even a negation
        ({}, True),
    ],
)
def test_label_specs(spec: dict[str, Any], expected: bool) -> None:
    flow = {
        "prefect.resource.id": "prefect.flow.1",
        "prefect.resource.role": "flow",
        "prefect.resource.name": "etl-orders",
    }
    assert resource_matches(flow, spec) is expected


def test_the_exported_etl_orders_trigger_covers_only_etl_orders_failures() -> None:
    trigger = EventTrigger.model_validate(
        {
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {
                "prefect.resource.role": "flow",
                "prefect.resource.name": "etl-orders",
            },
            "expect": ["prefect.flow-run.Failed"],
        }
    )
    failed = captured("prefect.flow-run.Failed", "etl-orders")
    assert covers(trigger, failed)
    assert expects(trigger, failed.event)
    assert not covers(trigger, captured("prefect.flow-run.Completed", "etl-sales"))
    assert not covers(trigger, captured("prefect.task-run.Failed", "etl-orders"))  # task run
    assert not expects(trigger, "prefect.flow-run.Running")


def test_match_related_needs_every_spec_satisfied_by_some_resource() -> None:
    late = captured("prefect.flow-run.Late", "bars-flow")  # a deployment run: flow, queue, pool
    both = EventTrigger.model_validate(
        {
            "match_related": [
                {"prefect.resource.role": "flow", "prefect.resource.name": "bars-*"},
                {"prefect.resource.role": "work-queue", "prefect.resource.name": "default"},
            ]
        }
    )
    one_missing = EventTrigger.model_validate(
        {
            "match_related": [
                {"prefect.resource.role": "flow"},
                {"prefect.resource.role": "dag"},
            ]
        }
    )
    crossed = EventTrigger.model_validate(
        {
            "match_related": [
                # the name belongs to the flow, the role to the queue: no single resource has both
                {"prefect.resource.role": "work-queue", "prefect.resource.name": "bars-flow"},
            ]
        }
    )
    assert covers(both, late)
    assert not covers(one_missing, late)
    assert not covers(crossed, late)
    assert label_value(late, "related:work-pool:prefect.work-pool.type") == "process"


def test_expect_globs_and_empty_expect() -> None:
    assert expects(EventTrigger(expect=["prefect.flow-run.*"]), "prefect.flow-run.Crashed")
    assert not expects(EventTrigger(expect=["prefect.flow-run.*"]), "prefect.task-run.Failed")
    assert expects(EventTrigger(), "anything.at.all")
    assert arms(EventTrigger(after=["*.Completed"]), "prefect.flow-run.Completed")
    assert not arms(EventTrigger(), "prefect.flow-run.Completed")


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("payload.validated_state.type == 'FAILED'", True),
        ("payload.validated_state.type == 'COMPLETED'", False),
        ("resource.\"prefect.resource.name\" == 'tuscan-guppy'", True),
        ("length(related) == `1`", True),
        ("payload.rows < `100`", False),  # no such field: null < 100 does not hold
        ("event == 'prefect.flow-run.Failed' && payload.intended.to == 'FAILED'", True),
    ],
)
def test_where_is_jmespath_over_the_whole_event(where: str, expected: bool) -> None:
    event = captured("prefect.flow-run.Failed", "etl-orders")
    trigger = EventTrigger(where=where)
    assert where_holds(trigger, event.model_dump(mode="json")) is expected


def test_for_each_keys_include_related_labels() -> None:
    event = captured("prefect.flow-run.Failed", "etl-orders")
    trigger = EventTrigger(
        for_each=[
            "prefect.resource.id",
            "related:flow:prefect.resource.name",
            "related:nope:prefect.resource.name",
            "missing.label",
        ]
    )
    assert bucket_key(trigger, event) == (event.resource.id, "etl-orders", "", "")
    assert bucket_key(EventTrigger(), event) == ()


def test_a_built_event_matches_like_a_received_one() -> None:
    event = Event(
        event="dbt.model.refreshed",
        resource={"prefect.resource.id": "dbt.model.sales", "team": "finance"},
        payload={"rows": 42},
    )
    trigger = EventTrigger(
        match={"prefect.resource.id": "dbt.model.*", "team": "finance"},
        expect=["dbt.model.*"],
        where="payload.rows > `10`",
    )
    assert covers(trigger, event)
    assert expects(trigger, event.event)
    assert where_holds(trigger, event.model_dump(mode="json"))
