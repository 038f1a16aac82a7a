"""A group's timing on its own: the first notice after `wait`, changes on the `interval`,
repeats unless acknowledged, one resolved notice after a firing one, muted alerts left
out; no database, times given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from actions.model import Grouping
from alerts.groups import Group, decide
from alerts.model import Alert, AlertState

T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
GROUPING = Grouping(wait=timedelta(seconds=30), interval=timedelta(minutes=5))


def alert(n: int, state: AlertState = AlertState.firing) -> Alert:
    return Alert(
        id=f"a{n}",
        fingerprint=f"f{n}",
        kind="automation",
        source_id="00000000-0000-0000-0000-000000000001",
        name="etl-failures",
        key={"prefect.resource.id": f"prefect.flow-run.{n}"},
        labels={},
        severity="critical",
        state=state,
        summary=f"run {n} failed",
        first_fired=T0,
        last_fired=T0,
    )


def group() -> Group:
    return Group("g", {"type": "send-slack"}, "automation", "s", "etl-failures", {})


def test_the_first_notice_waits_then_changes_keep_to_the_interval() -> None:
    g = group()
    g.joined(GROUPING, T0)
    assert g.due == T0 + timedelta(seconds=30)
    g.joined(GROUPING, T0 + timedelta(seconds=10))  # a later alert does not push it back
    assert g.due == T0 + timedelta(seconds=30)
    notice, gone = decide(g, GROUPING, [alert(1), alert(2)], g.due, acknowledges=False)
    assert notice is not None
    assert (notice.status, notice.total, notice.firing) == ("firing", 2, 2)
    assert gone == []
    assert g.due == T0 + timedelta(seconds=30) + GROUPING.repeat
    g.joined(GROUPING, T0 + timedelta(minutes=1))  # a change: the next interval
    assert g.due == T0 + timedelta(seconds=30, minutes=5)


def test_unchanged_groups_repeat_and_acknowledged_ones_do_not() -> None:
    g = group()
    sent_at = T0 + timedelta(seconds=30)
    decide(g, GROUPING, [alert(1)], sent_at, acknowledges=False)
    quiet, _ = decide(g, GROUPING, [alert(1)], sent_at + timedelta(hours=1), acknowledges=False)
    assert quiet is None
    assert g.due == sent_at + GROUPING.repeat
    again, _ = decide(g, GROUPING, [alert(1)], sent_at + GROUPING.repeat, acknowledges=False)
    assert again is not None
    acked = [alert(1, AlertState.acknowledged)]
    later = sent_at + 2 * GROUPING.repeat
    assert decide(g, GROUPING, acked, later, acknowledges=False) == (None, [])
    assert g.due is None  # no repeats while acknowledged
    told, _ = decide(g, GROUPING, acked, later, acknowledges=True)  # PagerDuty hears it
    assert told is not None
    assert told.status == "acknowledged"


def test_one_resolved_notice_only_after_a_firing_one() -> None:
    g = group()
    decide(g, GROUPING, [alert(1)], T0, acknowledges=False)
    resolved = [alert(1, AlertState.resolved)]
    notice, gone = decide(g, GROUPING, resolved, T0 + timedelta(minutes=5), acknowledges=False)
    assert notice is not None
    assert notice.status == "resolved"
    assert gone == ["a1"]
    assert g.status == "resolved"
    never = group()  # resolved before its first notice: nothing to take back
    assert decide(never, GROUPING, resolved, T0, acknowledges=False) == (None, ["a1"])
    assert never.status is None


def test_muted_alerts_are_left_out_and_a_fully_muted_group_is_quiet() -> None:
    g = group()
    alerts = [alert(1), alert(2)]
    notice, _ = decide(g, GROUPING, alerts, T0, acknowledges=False, muted=frozenset({"a2"}))
    assert notice is not None
    assert [a.id for a in notice.shown] == ["a1"]
    assert notice.total == 1
    everything = frozenset({"a1", "a2"})
    later = T0 + timedelta(minutes=10)
    assert decide(g, GROUPING, alerts, later, acknowledges=False, muted=everything) == (None, [])
