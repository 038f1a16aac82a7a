"""SLA definitions: the issue's examples load; mistakes are refused naming the field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from actions.model import SendSlack
from sla.model import SLA, DeadlineSLA, DurationSLA, FreshnessSLA
from tripwire.definitions import load_text

slas: TypeAdapter[Any] = TypeAdapter(SLA)

ISSUE = """\
slas:
  - name: sales-table-by-9
    kind: deadline
    expect: ["dbt.model.refreshed"]
    match: {prefect.resource.id: "dbt.model.sales"}
    deadline: {cron: "0 9 * * MON-FRI", timezone: "Europe/Berlin"}
    skip_dates: ["2026-12-25"]
    grace: 5m
    actions:
      - type: send-slack
        webhook_url: "{{ secret('SLACK_WEBHOOK_URL') }}"
        text: "sales table not refreshed by {{ sla.deadline }}"
  - name: etl-finishes-within-2h
    kind: duration
    start: ["prefect.flow-run.Running"]
    expect: ["prefect.flow-run.Completed"]
    match_related: {prefect.resource.role: deployment, prefect.resource.name: etl}
    for_each: ["prefect.resource.id"]
    within: 2h
  - name: worker-heartbeat
    kind: freshness
    expect: ["worker.heartbeat"]
    for_each: ["prefect.resource.id"]
    every: 15m
"""


def test_the_issues_example_loads() -> None:
    loaded = load_text(ISSUE, "slas.yaml")
    assert loaded.ok, loaded.errors
    assert loaded.origins["slas"] == ["slas.yaml:2", "slas.yaml:13", "slas.yaml:20"]
    deadline, duration, freshness = loaded.slas

    assert isinstance(deadline, DeadlineSLA)
    assert deadline.deadline.cron == "0 9 * * MON-FRI"
    assert deadline.deadline.timezone == "Europe/Berlin"
    assert deadline.skip_dates == [date(2026, 12, 25)]
    assert deadline.grace == timedelta(minutes=5)
    assert deadline.match == {"prefect.resource.id": "dbt.model.sales"}
    assert isinstance(deadline.actions[0], SendSlack)
    nine = datetime(2026, 12, 24, 8, tzinfo=UTC)  # 09:00 in Berlin, winter
    assert deadline.calendar.next_deadline(nine - timedelta(hours=1)) == nine
    assert deadline.due(nine) == nine + timedelta(minutes=5)

    assert isinstance(duration, DurationSLA)
    assert duration.start == ["prefect.flow-run.Running"]
    assert duration.within == timedelta(hours=2)
    assert duration.match_related == [  # one spec becomes a list, as in triggers
        {"prefect.resource.role": "deployment", "prefect.resource.name": "etl"}
    ]

    assert isinstance(freshness, FreshnessSLA)
    assert freshness.every == timedelta(minutes=15)
    assert freshness.for_each == ["prefect.resource.id"]

    for sla in loaded.slas:  # the defaults the issue names
        assert (sla.severity, sla.enabled, sla.catch_up, sla.emit_met) == (
            "warning",
            True,
            "fire",
            False,
        )
        assert sla.warn_before is None
    assert freshness.start == "first_event"
    assert deadline.where_expression is None


def test_common_fields_and_an_early_warning() -> None:
    sla = slas.validate_python(
        {
            "name": "etl",
            "kind": "duration",
            "description": "the nightly ETL finishes in time",
            "severity": "critical",
            "enabled": False,
            "start": ["flow.started"],
            "expect": ["flow.finished"],
            "within": "2h",
            "where": "payload.rows > `0`",
            "warn_before": {"before": "15m", "actions": [{"type": "do-nothing"}]},
            "actions_on_resolve": [{"type": "do-nothing"}],
            "catch_up": "skip",
            "emit_met": True,
        }
    )
    assert sla.severity == "critical"
    assert sla.warn_before.before == timedelta(minutes=15)
    assert sla.where_expression.search({"payload": {"rows": 3}}) is True
    assert (sla.catch_up, sla.emit_met, sla.enabled) == ("skip", True, False)
    assert slas.validate_python(
        {"name": "f", "kind": "freshness", "expect": ["x"], "every": 60, "start": "apply"}
    ).start == ("apply")


def problems(definition: dict[str, Any]) -> dict[tuple[Any, ...], str]:
    """Each error's location (without the union tag) and message."""
    with pytest.raises(ValidationError) as caught:
        slas.validate_python(definition)
    return {error["loc"][1:]: error["msg"] for error in caught.value.errors()}


def deadline(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "d",
        "kind": "deadline",
        "expect": ["x"],
        "deadline": {"cron": "0 9 * * MON-FRI"},
    }
    return base | fields


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 9 * *", "is not a cron expression (Wrong number of fields; got 4, expected 5)"),
        ("0 25 * * *", "the last value (25) is higher than the maximum value (23)"),
        ("0 9 * * MON-FRX", 'Invalid weekday name "FRX"'),
        ("0 9 * * 1-5", "use names such as MON-FRI"),  # cron's 1 is Monday, APScheduler's Tuesday
        ("0 9 1 * MON", "restricts both the day of the month and the day of the week"),
        ("0 9 30 2 *", "never matches a date"),
    ],
)
def test_a_bad_cron_names_the_field(cron: str, message: str) -> None:
    found = problems(deadline(deadline={"cron": cron, "timezone": "Europe/Berlin"}))
    assert list(found) == [("deadline", "cron")]
    assert message in found[("deadline", "cron")]


def test_deadline_mistakes() -> None:
    found = problems(
        deadline(
            deadline={"cron": "0 9 * * *", "timezone": "Europe/Berlinn"},
            expect=[],
            grace=-300,
            skip_dates=["2026-02-30"],
        )
    )
    assert "not a known IANA time zone" in found[("deadline", "timezone")]
    assert "at least 1 item" in found[("expect",)]
    assert "must not be negative" in found[("grace",)]
    assert "date" in found[("skip_dates", 0)]
    assert len(found) == 4
    missing = problems({"name": "d", "kind": "deadline", "deadline": {"cron": "0 9 * * *"}})
    assert list(missing) == [("expect",)]


def test_warn_before_must_be_shorter_than_what_it_warns_about() -> None:
    warn = {"before": "2h", "actions": [{"type": "do-nothing"}]}
    duration = {"name": "d", "kind": "duration", "start": ["a"], "expect": ["b"]}
    found = problems(duration | {"within": "1h", "warn_before": warn})
    assert "warn_before.before (2:00:00) must be shorter than within (1:00:00)" in found[()]
    freshness = {"name": "f", "kind": "freshness", "expect": ["b"], "every": "2h"}
    assert "shorter than every" in problems(freshness | {"warn_before": warn})[()]
    found = problems(duration | {"within": "3h", "warn_before": {"before": 0, "actions": []}})
    assert "longer than 0" in found[("warn_before", "before")]
    assert "at least 1 item" in found[("warn_before", "actions")]


def test_unknown_fields_kinds_and_missing_parts_are_refused() -> None:
    assert "Extra inputs" in problems(deadline(sevrity="high"))[("sevrity",)]
    assert "'info', 'warning' or 'critical'" in problems(deadline(severity="page"))[("severity",)]
    assert "'fire' or 'skip'" in problems(deadline(catch_up="later"))[("catch_up",)]
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        slas.validate_python({"name": "x", "kind": "uptime"})
    duration = problems({"name": "d", "kind": "duration", "expect": ["b"], "within": 0})
    assert set(duration) == {("start",), ("within",)}
    assert "longer than 0" in duration[("within",)]
    freshness = problems({"name": "f", "kind": "freshness", "expect": ["b"], "start": "now"})
    assert set(freshness) == {("every",), ("start",)}
    assert "position 8" in problems(deadline(where="payload."))[("where",)]
