"""SLA rules on SQLite and PostgreSQL: deadlines, durations, freshness, warnings,
recoveries, catch-up after downtime, and deciding each thing once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.sla.conftest import (
    MONDAY_8,
    SLABench,
    flow_run,
    minutes,
    refreshed,
    reported,
    requests,
    states,
)
from tests.support import published_on

NOTIFY = {"type": "do-nothing"}
SALES_BY_9: dict[str, Any] = {
    "name": "sales-table-by-9",
    "kind": "deadline",
    "expect": ["dbt.model.refreshed"],
    "match": {"prefect.resource.id": "dbt.model.sales"},
    "deadline": {"cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin"},
    "grace": "5m",
    "actions": [NOTIFY],
    "actions_on_resolve": [NOTIFY, NOTIFY],
}
NINE_BERLIN = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
DUE = NINE_BERLIN + minutes(5)
DAY = timedelta(days=1)

ETL_2H: dict[str, Any] = {
    "name": "etl-finishes-within-2h",
    "kind": "duration",
    "start": ["prefect.flow-run.Running"],
    "expect": ["prefect.flow-run.Completed"],
    "match_related": {"prefect.resource.role": "deployment", "prefect.resource.name": "etl"},
    "for_each": ["prefect.resource.id"],
    "within": "2h",
    "actions": [NOTIFY],
    "actions_on_resolve": [NOTIFY],
}
HEARTBEAT: dict[str, Any] = {
    "name": "worker-heartbeat",
    "kind": "freshness",
    "expect": ["dbt.model.refreshed"],
    "for_each": ["prefect.resource.id"],
    "every": "15m",
    "actions": [NOTIFY],
    "actions_on_resolve": [NOTIFY],
}


# --- deadline ------------------------------------------------------------------------


async def test_a_deadline_is_missed_at_its_instant_and_recovers_late(bench: SLABench) -> None:
    await bench.apply(SALES_BY_9)
    opened = await bench.due()
    assert states(opened) == []
    assert opened.next_due == DUE  # the timer is scheduled for the exact instant

    assert states(await bench.due(DUE - timedelta(milliseconds=1))) == []
    missed = await bench.due(DUE)
    assert states(missed) == ["missed"]
    ((_, payload),) = reported(missed)
    assert payload["deadline"] == NINE_BERLIN.isoformat()
    assert payload["window"]["end"] == DUE.isoformat()
    assert payload["expected"] == ["dbt.model.refreshed"]
    assert payload["late"] is False
    (request,) = requests(missed)
    assert request["sla"]["name"] == "sales-table-by-9"
    assert request["state"] == "triggered"
    assert states(await bench.due(DUE + minutes(1))) == []  # decided once

    bench.clock.current = NINE_BERLIN + minutes(55)
    recovered = await bench.send(refreshed(NINE_BERLIN + minutes(50)))
    assert states(recovered) == ["recovered"]
    assert reported(recovered)[0][1]["deadline"] == NINE_BERLIN.isoformat()
    assert [r["state"] for r in requests(recovered)] == ["resolved", "resolved"]

    # The late refresh went to Monday's miss, not to Tuesday's window.
    assert states(await bench.due(DUE + DAY)) == ["missed"]


async def test_an_event_in_the_window_meets_the_deadline(bench: SLABench) -> None:
    await bench.apply({**SALES_BY_9, "emit_met": True})
    await bench.due()
    bench.clock.current = NINE_BERLIN + minutes(3)
    met = await bench.send(refreshed(NINE_BERLIN + minutes(3)))  # within the grace
    assert states(met) == ["met"]
    assert requests(met) == []
    assert states(await bench.send(refreshed(NINE_BERLIN + minutes(4)))) == []  # met once
    assert states(await bench.due(DUE)) == []
    window = await bench.window("sales-table-by-9")
    assert window is not None
    assert window.deadline == NINE_BERLIN + DAY
    assert window.opened == DUE


async def test_other_resources_and_names_do_not_count(bench: SLABench) -> None:
    await bench.apply(SALES_BY_9)
    await bench.due()
    bench.clock.current = NINE_BERLIN
    assert states(await bench.send(refreshed(NINE_BERLIN - minutes(30), model="orders"))) == []
    assert states(await bench.due(DUE)) == ["missed"]


async def test_an_sla_applied_after_todays_event_counts_it(bench: SLABench) -> None:
    await bench.store_only(refreshed(MONDAY_8 + minutes(10)))
    bench.clock.current = MONDAY_8 + minutes(50)
    await bench.apply(SALES_BY_9)
    await bench.due()
    window = await bench.window("sales-table-by-9")
    assert window is not None
    assert window.met == MONDAY_8 + minutes(10)
    assert states(await bench.due(DUE)) == []


async def test_catch_up_fires_each_missed_deadline_once_marked_late(bench: SLABench) -> None:
    await bench.apply(SALES_BY_9)
    await bench.due()
    thursday_noon = NINE_BERLIN + 3 * DAY + timedelta(hours=3)
    result = await bench.due(thursday_noon)  # the engine was down since Monday morning
    assert states(result) == ["missed"] * 4
    deadlines = [payload["deadline"] for _, payload in reported(result)]
    assert deadlines == [(NINE_BERLIN + n * DAY).isoformat() for n in range(4)]
    assert all(payload["late"] for _, payload in reported(result))
    assert states(await bench.due(thursday_noon + minutes(1))) == []
    window = await bench.window("sales-table-by-9")
    assert window is not None
    assert window.deadline == NINE_BERLIN + 4 * DAY


async def test_catch_up_skip_leaves_the_downtime_misses_out(bench: SLABench) -> None:
    await bench.apply({**SALES_BY_9, "catch_up": "skip"})
    await bench.due()
    assert states(await bench.due(NINE_BERLIN + 2 * DAY)) == []
    assert states(await bench.due(DUE + 2 * DAY)) == ["missed"]  # on time again


async def test_a_long_downtime_fires_the_latest_misses_and_counts_the_rest(
    bench: SLABench,
) -> None:
    hourly = {**SALES_BY_9, "deadline": {"cron": "0 * * * *"}, "grace": "0s"}
    await bench.apply(hourly)
    await bench.due()
    result = await bench.due(MONDAY_8 + 2 * DAY)
    assert states(result) == ["missed"] * 10
    assert reported(result)[0][1]["skipped_misses"] == 39  # 49 hourly deadlines


async def test_a_warning_comes_before_the_deadline_unless_it_is_met(bench: SLABench) -> None:
    warned = {**SALES_BY_9, "warn_before": {"before": "30m", "actions": [NOTIFY]}}
    await bench.apply(warned)
    await bench.due()
    result = await bench.due(NINE_BERLIN - minutes(30))
    assert states(result) == ["at-risk"]
    assert requests(result)[0]["sla"]["state"] == "at-risk"
    bench.clock.current = NINE_BERLIN - minutes(10)
    await bench.send(refreshed(NINE_BERLIN - minutes(10)))
    assert states(await bench.due(DUE)) == []
    # Tuesday: met before the warning, so no warning.
    bench.clock.current = NINE_BERLIN + DAY - minutes(40)
    await bench.send(refreshed(NINE_BERLIN + DAY - minutes(40)))
    assert states(await bench.due(NINE_BERLIN + DAY - minutes(30))) == []


async def test_a_keyed_deadline_watches_each_key_from_its_first_event(bench: SLABench) -> None:
    keyed = {**SALES_BY_9, "match": {}, "for_each": ["prefect.resource.id"]}
    await bench.apply(keyed)
    bench.clock.current = MONDAY_8 + minutes(30)
    await bench.send(refreshed(MONDAY_8 + minutes(30), "sales"))
    await bench.send(refreshed(MONDAY_8 + minutes(31), "orders"))
    assert states(await bench.due(DUE)) == []
    bench.clock.current = NINE_BERLIN + DAY - minutes(5)
    await bench.send(refreshed(NINE_BERLIN + DAY - minutes(5), "orders"))
    missed = await bench.due(DUE + DAY)
    assert [p["key"] for _, p in reported(missed)] == [{"prefect.resource.id": "dbt.model.sales"}]


# --- duration ------------------------------------------------------------------------


async def test_a_run_that_completes_in_time_meets_its_duration(bench: SLABench) -> None:
    await bench.apply(ETL_2H)
    start = MONDAY_8
    await bench.send(flow_run("Running", "a", start))
    result = await bench.send(flow_run("Completed", "a", start + minutes(90)))
    assert states(result) == []
    assert await bench.window("etl-finishes-within-2h", ["prefect.flow-run.a"]) is None
    assert states(await bench.due(start + timedelta(hours=3))) == []


async def test_a_run_that_overruns_is_missed_then_recovers(bench: SLABench) -> None:
    await bench.apply(ETL_2H)
    start = MONDAY_8
    opened = await bench.send(flow_run("Running", "a", start), flow_run("Running", "b", start))
    assert opened.next_due == start + timedelta(hours=2)
    await bench.send(flow_run("Completed", "b", start + minutes(30)))
    missed = await bench.due(start + timedelta(hours=2))
    assert states(missed) == ["missed"]
    assert reported(missed)[0][1]["key"] == {"prefect.resource.id": "prefect.flow-run.a"}
    related = [r["prefect.resource.id"] for r in _event(missed)["related"]]
    assert "prefect.flow-run.a" in related
    bench.clock.current = start + timedelta(hours=3)
    recovered = await bench.send(flow_run("Completed", "a", start + timedelta(hours=3)))
    assert states(recovered) == ["recovered"]
    assert requests(recovered)[0]["triggering_event"]["event"] == "prefect.flow-run.Completed"


async def test_a_late_completion_seen_before_the_timer_is_a_miss_and_a_recovery(
    bench: SLABench,
) -> None:
    await bench.apply(ETL_2H)
    await bench.send(flow_run("Running", "a", MONDAY_8))
    bench.clock.current = MONDAY_8 + timedelta(hours=3)
    result = await bench.send(flow_run("Completed", "a", MONDAY_8 + timedelta(hours=3)))
    assert states(result) == ["missed", "recovered"]
    assert states(await bench.due()) == []


async def test_other_deployments_do_not_start_the_clock(bench: SLABench) -> None:
    await bench.apply(ETL_2H)
    await bench.send(flow_run("Running", "a", MONDAY_8, deployment="reports"))
    assert states(await bench.due(MONDAY_8 + timedelta(hours=3))) == []


# --- freshness -----------------------------------------------------------------------


async def test_freshness_is_missed_after_a_gap_and_recovers(bench: SLABench) -> None:
    await bench.apply(HEARTBEAT)
    await bench.send(refreshed(MONDAY_8))
    await bench.send(refreshed(MONDAY_8 + minutes(10)))
    assert states(await bench.due(MONDAY_8 + minutes(24))) == []
    missed = await bench.due(MONDAY_8 + minutes(25))
    assert states(missed) == ["missed"]
    assert reported(missed)[0][1]["last_seen"] == (MONDAY_8 + minutes(10)).isoformat()
    assert states(await bench.due(MONDAY_8 + minutes(60))) == []  # once per gap
    bench.clock.current = MONDAY_8 + minutes(61)
    assert states(await bench.send(refreshed(MONDAY_8 + minutes(61)))) == ["recovered"]
    assert states(await bench.due(MONDAY_8 + minutes(76))) == ["missed"]


async def test_freshness_from_apply_watches_before_any_event(bench: SLABench) -> None:
    await bench.apply({**HEARTBEAT, "for_each": [], "start": "apply"})
    await bench.due()
    assert states(await bench.due(MONDAY_8 + minutes(15))) == ["missed"]


# --- definitions ---------------------------------------------------------------------


async def test_changing_what_an_sla_watches_resets_its_windows(bench: SLABench) -> None:
    await bench.apply(ETL_2H)
    await bench.send(flow_run("Running", "a", MONDAY_8))
    await bench.apply({**ETL_2H, "actions": [NOTIFY, NOTIFY]})  # actions only: kept
    assert await bench.window("etl-finishes-within-2h", ["prefect.flow-run.a"]) is not None
    await bench.apply({**ETL_2H, "within": "3h"})
    assert await bench.window("etl-finishes-within-2h", ["prefect.flow-run.a"]) is None


async def test_a_disabled_sla_is_not_evaluated(bench: SLABench) -> None:
    await bench.apply({**HEARTBEAT, "enabled": False})
    assert states(await bench.send(refreshed(MONDAY_8))) == []
    assert states(await bench.due(MONDAY_8 + timedelta(hours=1))) == []
    assert await bench.window("worker-heartbeat", ["dbt.model.sales"]) is None


def _event(result: Any) -> dict[str, Any]:
    import orjson

    from tests.sla.conftest import EVENTS_SUBJECT

    (message,) = [m for m in result.messages if published_on(m.subject, EVENTS_SUBJECT)]
    body: dict[str, Any] = orjson.loads(message.body)
    return body


# --- calendars through the evaluator ---------------------------------------------------


async def test_deadlines_across_daylight_saving_changes_in_two_zones(bench: SLABench) -> None:
    # 02:30 does not exist on the spring-forward night: the deadline is the end of the gap.
    berlin = {
        **SALES_BY_9,
        "name": "berlin",
        "deadline": {"cron": "30 2 * * *", "timezone": "Europe/Berlin"},
        "grace": "0s",
    }
    new_york = {**berlin, "name": "new-york", "deadline": {"cron": "30 2 * * *",
                "timezone": "America/New_York"}}  # fmt: skip
    bench.clock.current = datetime(2027, 3, 13, 0, 0, tzinfo=UTC)
    await bench.apply(berlin, new_york)
    upcoming = (await bench.due()).next_due
    seen: list[tuple[str, str]] = []
    while upcoming is not None and upcoming < datetime(2027, 3, 29, 12, 0, tzinfo=UTC):
        result = await bench.due(upcoming)  # as the timer does: woken at the next instant
        for name, payload in reported(result):
            seen.append((payload["name"], payload["deadline"]))
            assert name == "tripwire.sla.missed"
            assert payload["late"] is False
            assert payload["window"]["end"] == upcoming.isoformat()
        upcoming = result.next_due
    new_york_days = [d for n, d in seen if n == "new-york"]
    berlin_days = [d for n, d in seen if n == "berlin"]
    # New York springs forward on 14 March: 02:30 EST does not exist, 03:00 EDT = 07:00 UTC.
    assert new_york_days[:3] == [
        "2027-03-13T07:30:00+00:00",  # 02:30 EST
        "2027-03-14T07:00:00+00:00",  # the end of the gap
        "2027-03-15T06:30:00+00:00",  # 02:30 EDT
    ]
    # Berlin springs forward on 28 March: 02:00 CET -> 03:00 CEST (01:00 UTC).
    assert berlin_days[-3:] == [
        "2027-03-27T01:30:00+00:00",  # 02:30 CET
        "2027-03-28T01:00:00+00:00",  # the end of the gap
        "2027-03-29T00:30:00+00:00",  # 02:30 CEST
    ]
    assert len(berlin_days) == len(set(berlin_days)) == 17  # one a day, 13 to 29 March


async def test_holidays_have_no_deadline(bench: SLABench) -> None:
    await bench.apply({**SALES_BY_9, "skip_dates": ["2026-11-24"]})  # Tuesday
    await bench.due()
    bench.clock.current = NINE_BERLIN - minutes(5)
    await bench.send(refreshed(NINE_BERLIN - minutes(5)))
    assert states(await bench.due(DUE + DAY)) == []  # Tuesday is a holiday
    missed = await bench.due(DUE + 2 * DAY)
    assert [p["deadline"] for _, p in reported(missed)] == [(NINE_BERLIN + 2 * DAY).isoformat()]
    assert reported(missed)[0][1]["window"]["start"] == DUE.isoformat()  # from Monday's due


async def test_a_thousand_runs_each_get_their_own_duration(
    bench: SLABench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sla.evaluator.DUE_BATCH", 300)  # two passes for the 500 misses
    await bench.apply(ETL_2H)
    runs = [flow_run("Running", f"run-{n}", MONDAY_8 + timedelta(seconds=n)) for n in range(1000)]
    await bench.send(*runs)
    done = [flow_run("Completed", f"run-{n}", MONDAY_8 + minutes(60)) for n in range(0, 1000, 2)]
    await bench.send(*done)
    later = MONDAY_8 + timedelta(hours=2, minutes=20)
    first = await bench.due(later)
    assert first.next_due == later  # a full batch: come back at once for the rest
    second = await bench.due(later)
    keys = [p["key"]["prefect.resource.id"] for _, p in reported(first) + reported(second)]
    assert sorted(keys) == sorted(f"prefect.flow-run.run-{n}" for n in range(1, 1000, 2))
    assert states(await bench.due(later)) == []
