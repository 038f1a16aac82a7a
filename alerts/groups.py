"""Notification groups: the alerts one grouped action tells people about in one message,
and when it next does.

A group is one notification action (its whole definition) and the values of its `by`
labels, so automations that share an action share its groups. Its life:

- the first alert starts it: the first notice goes out `wait` later, holding whatever
  joined meanwhile;
- after a notice, a change (an alert joined, resolved, acknowledged, fired again after
  an acknowledgement ran out) goes out at most every `interval`;
- a group still firing and unchanged goes out again every `repeat`, unless every alert
  in it is acknowledged;
- once every alert has resolved, one resolved notice (with `send_resolved`), if a
  firing notice went out; then the group starts over.

The timer decides a group when `due` comes (`decide`); everything else only moves `due`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from actions.model import Grouping
from alerts.model import Alert, AlertState

SHOWN = 10  # alerts listed in one notice; the count says how many there are


def group_id(action: dict[str, Any], labels: dict[str, str]) -> str:
    """The same for the same action definition and the same `by` values."""
    raw = orjson.dumps([action, sorted(labels.items())], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


def by_values(grouping: Grouping, labels: dict[str, Any]) -> dict[str, str]:
    """The alert's values of the `by` labels (a list, such as tags, joined by commas)."""
    out: dict[str, str] = {}
    for name in grouping.by:
        value = labels.get(name, "")
        out[name] = ",".join(value) if isinstance(value, list) else str(value)
    return out


@dataclass
class Group:
    """One row of `alert_groups`."""

    id: str
    action: dict[str, Any]
    source_kind: str
    source_id: str
    source_name: str
    labels: dict[str, str]
    due: datetime | None = None
    status: str | None = None  # what the last notice said: firing, acknowledged, resolved
    sent: datetime | None = None
    sent_alerts: dict[str, str] | None = None
    sequence: int = 0

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "source_kind": self.source_kind,
            "source_id": self.source_id,
            "source_name": self.source_name,
            "labels": self.labels,
            "due": self.due,
            "status": self.status,
            "sent": self.sent,
            "sent_alerts": self.sent_alerts,
            "sequence": self.sequence,
        }

    @classmethod
    def from_row(cls, row: Any) -> Group:
        values = dict(row._mapping)
        values.pop("updated", None)
        return cls(**values)

    @property
    def notified(self) -> bool:
        """A firing notice went out and no resolved one since."""
        return self.status in ("firing", "acknowledged")

    def sooner(self, when: datetime) -> None:
        if self.due is None or when < self.due:
            self.due = when

    def joined(self, grouping: Grouping, now: datetime) -> None:
        """An alert joined (or changed): the first notice after `wait`, later ones on
        the `interval`."""
        if self.notified and self.sent is not None:
            self.sooner(max(self.sent + grouping.interval, now))
        else:
            self.sooner(now + grouping.wait)

    def changed(self, grouping: Grouping, now: datetime) -> None:
        """An alert in the group resolved or was acknowledged."""
        if self.notified and self.sent is not None:
            self.sooner(max(self.sent + grouping.interval, now))
        elif self.due is None:
            self.sooner(now)  # never told: the timer drops what has resolved


@dataclass
class Notice:
    """What the timer decided to send for a group."""

    status: str  # firing, acknowledged or resolved
    total: int
    firing: int
    shown: list[Alert]


def decide(
    group: Group,
    grouping: Grouping,
    alerts: list[Alert],
    now: datetime,
    *,
    acknowledges: bool,
    muted: frozenset[str] = frozenset(),
) -> tuple[Notice | None, list[str]]:
    """The notice to send now, if any, and the alerts that leave the group. Moves the
    group's `due`, `status` and `sent`. `acknowledges`: the action has something to say
    when every alert is acknowledged (PagerDuty); others stay quiet then. `muted`: ids of
    silenced or inhibited alerts, left out of firing notices; their resolution still
    counts, so a group told of a firing hears that it resolved."""
    open_alerts = [a for a in alerts if a.state is not AlertState.resolved]
    shown = [a for a in alerts if a.id not in muted or a.state is AlertState.resolved]
    firing = [a for a in open_alerts if a.state is AlertState.firing and a.id not in muted]
    states = {a.id: "muted" if a.id in muted else a.state.value for a in alerts}
    changed = states != (group.sent_alerts or {})
    group.due = None
    if not open_alerts:
        gone = [a.id for a in alerts]
        notice = None
        if group.notified and grouping.send_resolved:
            notice = Notice("resolved", len(alerts), 0, alerts[:SHOWN])
        group.status = "resolved" if notice is not None else None
        group.sent_alerts = None
        if notice is not None:
            group.sent = now
            group.sequence += 1
        return notice, gone
    if not firing:  # all acknowledged or muted: no repeats
        quiet = all(a.state is AlertState.acknowledged for a in open_alerts)
        if quiet and group.status != "acknowledged" and group.notified and acknowledges:
            return _sent(group, now, states, "acknowledged", shown), _told_resolved(group)
        return None, []
    repeat_due = group.sent is not None and now >= group.sent + grouping.repeat
    if group.status != "firing" or changed or repeat_due:
        notice = _sent(group, now, states, "firing", shown)
        group.due = now + grouping.repeat
        return notice, [a.id for a in alerts if a.state is AlertState.resolved]
    assert group.sent is not None
    group.due = group.sent + grouping.repeat
    return None, []


def _sent(
    group: Group, now: datetime, states: dict[str, str], status: str, alerts: list[Alert]
) -> Notice:
    group.status, group.sent, group.sent_alerts = status, now, states
    group.sequence += 1
    open_first = sorted(alerts, key=lambda a: a.state is AlertState.resolved)
    firing = sum(a.state is AlertState.firing for a in alerts)
    return Notice(status, len(alerts), firing, open_first[:SHOWN])


def _told_resolved(group: Group) -> list[str]:
    return [i for i, s in (group.sent_alerts or {}).items() if s == AlertState.resolved.value]


def grouping_of(action: Any) -> Grouping:
    """The action's grouping; a PagerDuty action without one groups per alert."""
    found: Grouping | None = getattr(action, "grouping", None)
    return found if found is not None else PER_ALERT


# PagerDuty without `grouping:`: every alert its own incident, told at once.
PER_ALERT = Grouping(by=["alert"], wait=timedelta(0), interval=timedelta(seconds=1))
