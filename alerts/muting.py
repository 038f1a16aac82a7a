"""What mutes an alert at one instant: the silences and maintenance windows in force, and
the inhibition rules with the open alerts that may inhibit.

A `Muting` is read once per decision (a timer pass, a batch that opened alerts, a page
of the API) and then answers for every alert without another query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.matchers import Labels, Matcher, matches, parse_matcher
from alerts.model import Alert
from alerts.schedule import next_change
from alerts.silences import InhibitRule, RecurringSilence
from alerts.tables import alerts, inhibit_rules, recurring_silences, silences


@dataclass(frozen=True)
class Silence:
    """A silence in force: one added by hand, or a window of a recurring one."""

    id: str  # the hand silence's id, or the recurring one's name
    kind: str  # silence or window
    matchers: tuple[Matcher, ...]
    holds: str  # notifications or all
    ends: datetime | None
    comment: str
    created_by: str | None = None
    until_resolved: bool = False

    @property
    def label(self) -> str:
        """How people see it: `silence 1b2c3d4e` or `window sunday-maintenance`."""
        return f"silence {self.id[:8]}" if self.kind == "silence" else f"window {self.id}"


@dataclass
class Muting:
    """The silences in force at `at`, the inhibition rules and their source alerts."""

    at: datetime
    silences: list[Silence] = field(default_factory=list)
    rules: list[InhibitRule] = field(default_factory=list)
    sources: list[Alert] = field(default_factory=list)
    next_change: datetime | None = None  # a silence starts or ends then

    def silenced_by(self, labels: Labels) -> list[Silence]:
        return [s for s in self.silences if matches(s.matchers, labels)]

    def inhibited_by(self, alert: Alert) -> list[Alert]:
        """The open alerts that inhibit this one (never itself)."""
        return self.inhibitors(alert.labels, alert.id)

    def inhibitors(self, labels: Labels, own_id: str | None = None) -> list[Alert]:
        """The open alerts that inhibit an alert with these labels."""
        found: list[Alert] = []
        for rule in self.rules:
            if not matches(rule.mute, labels):
                continue
            for source in self.sources:
                if (
                    source.id != own_id
                    and matches(rule.when, source.labels)
                    and all(source.labels.get(n) == labels.get(n) for n in rule.equal)
                ):
                    found.append(source)
        return found

    def muted(self, alert: Alert) -> bool:
        return bool(self.silenced_by(alert.labels) or self.inhibited_by(alert))

    def why(self, alert: Alert) -> dict[str, list[str]]:
        """What the API and pages show beside the alert's state."""
        return {
            "silenced_by": [s.label for s in self.silenced_by(alert.labels)],
            "inhibited_by": [a.id for a in self.inhibited_by(alert)],
        }

    def holding_actions(self, labels: Labels) -> list[Silence]:
        """Silences that hold back every action of an alert with these labels."""
        return [s for s in self.silenced_by(labels) if s.holds == "all"]


def _earliest(*times: datetime | None) -> datetime | None:
    given = [t for t in times if t is not None]
    return min(given) if given else None


async def read_muting(conn: AsyncConnection, at: datetime, *, sources: bool = True) -> Muting:
    """Everything that mutes at `at`; `sources`: also read the open alerts that may
    inhibit (only when there are rules)."""
    muting = Muting(at)
    hand = await conn.execute(select(silences).where(silences.c.expired.is_(None)))
    for row in hand.all():
        if row.ends is not None and row.ends <= at:
            continue
        if row.starts > at:
            muting.next_change = _earliest(muting.next_change, row.starts)
            continue
        muting.silences.append(
            Silence(
                id=row.id,
                kind="silence",
                matchers=tuple(parse_matcher(m) for m in row.matchers),
                holds=row.actions,
                ends=row.ends,
                comment=row.comment,
                created_by=row.created_by,
                until_resolved=row.until_resolved,
            )
        )
        muting.next_change = _earliest(muting.next_change, row.ends)
    for row in (await conn.execute(select(recurring_silences))).all():
        recurring = RecurringSilence.model_validate(row.definition)
        window = recurring.window(at)
        muting.next_change = _earliest(muting.next_change, next_change(recurring.schedule, at))
        if window is not None:
            muting.silences.append(
                Silence(
                    id=recurring.name,
                    kind="window",
                    matchers=tuple(recurring.match),
                    holds=recurring.actions,
                    ends=window[1],
                    comment=recurring.comment,
                )
            )
    muting.rules = [
        InhibitRule.model_validate(r.definition)
        for r in (await conn.execute(select(inhibit_rules))).all()
    ]
    if muting.rules and sources:
        open_alerts = select(alerts).where(alerts.c.open_fingerprint.is_not(None))
        muting.sources = [Alert.from_row(r) for r in (await conn.execute(open_alerts)).all()]
    return muting


async def expire_resolved(conn: AsyncConnection, muting: Muting, now: datetime) -> list[str]:
    """End the until-resolved silences that no open alert matches any more."""
    waiting = [s for s in muting.silences if s.until_resolved]
    if not waiting:
        return []
    if not muting.sources:
        rows = await conn.execute(select(alerts).where(alerts.c.open_fingerprint.is_not(None)))
        muting.sources = [Alert.from_row(r) for r in rows.all()]
    done = [s.id for s in waiting if not any(matches(s.matchers, a.labels) for a in muting.sources)]
    if done:
        await conn.execute(
            update(silences)
            .where(and_(silences.c.id.in_(done), silences.c.expired.is_(None)))
            .values(expired=now)
        )
        muting.silences = [s for s in muting.silences if s.id not in done]
    return done


def silence_json(row: Any, now: datetime) -> dict[str, Any]:
    """A hand silence for the API: its matchers as written, and whether it is in force."""
    if row.expired is not None:
        state = "expired"
    elif row.starts > now:
        state = "pending"
    elif row.ends is not None and row.ends <= now:
        state = "expired"
    else:
        state = "active"
    return {
        "id": row.id,
        "kind": "silence",
        "state": state,
        "matchers": list(row.matchers),
        "starts": row.starts.isoformat(),
        "ends": row.ends.isoformat() if row.ends else None,
        "until_resolved": row.until_resolved,
        "actions": row.actions,
        "created_by": row.created_by,
        "comment": row.comment,
        "created": row.created.isoformat(),
        "expired": row.expired.isoformat() if row.expired else None,
    }
