"""The alerts engine: a companion of the trigger pipeline that opens, feeds and resolves
alerts from the firing and SLA events of each stored batch, and on the timer resolves
alerts whose `resolve_after` ran out and sends the notices of grouped notifications.

Everything it decides is written in the transaction of the batch or the timer pass,
with the messages (alert events, notification requests) in the same outbox, so a crash
or a second worker neither loses a notice nor sends it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid5

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from actions.model import Action
from alerts import lineage
from alerts import repository as db
from alerts.groups import Group, by_values, decide, group_id, grouping_of
from alerts.model import Alert, AlertState
from alerts.muting import expire_resolved, read_muting
from alerts.notices import alert_event, notice_request, parse_action
from alerts.signals import Signal, Sources
from alerts.tables import alert_firings, alert_group_members, alerts
from events import clock
from sla.store import SLAStore
from triggers.evaluator import Subjects
from triggers.firing import Message, event_message
from triggers.identity import NAMESPACE
from triggers.repository import AutomationStore
from triggers.results import Result
from triggers.state import write_outbox

log = logging.getLogger("tripwire.alerts")

DUE_BATCH = 500  # alerts and groups decided per timer pass
RETENTION = timedelta(days=30)  # resolved alerts kept this long


def resolve(alert: Alert, at: datetime, by: str) -> None:
    alert.state, alert.resolved, alert.resolved_by = AlertState.resolved, at, by
    alert.resolve_at = alert.acknowledged_until = None
    alert.changed = True


def acknowledge(
    alert: Alert, at: datetime, until: datetime | None, by: str | None, comment: str | None
) -> None:
    alert.state, alert.acknowledged, alert.acknowledged_until = AlertState.acknowledged, at, until
    alert.acknowledged_by, alert.comment = by, comment
    alert.changed = True


async def touch_groups(
    conn: AsyncConnection, alert_ids: Sequence[str], now: datetime
) -> list[Group]:
    """Tell the groups of these alerts that they changed (resolved, acknowledged)."""
    ids = await db.groups_of(conn, alert_ids)
    if not ids:
        return []
    await db.lock_groups(conn, ids)
    groups = list((await db.load_groups(conn, ids)).values())
    for group in groups:
        try:
            group.changed(grouping_of(parse_action(group.action)), now)
        except ValidationError:
            continue
    await db.save_groups(conn, groups)
    return groups


@dataclass
class _Joined:
    group: Group | None
    action: Action
    signal: Signal
    labels: dict[str, str]
    alert_ids: set[str] = field(default_factory=set)


class AlertBook:
    """Loaded automations and SLAs, and what their events do to alerts."""

    def __init__(
        self,
        subjects: Subjects,
        automations: AutomationStore | None = None,
        slas: SLAStore | None = None,
        *,
        retention: timedelta = RETENTION,
    ) -> None:
        self.subjects = subjects
        self.automations = automations
        self.slas = slas
        self.retention = retention
        self.sources = Sources({}, {})

    async def reload(self) -> None:
        automations = await self.automations.all() if self.automations is not None else []
        slas = await self.slas.all() if self.slas is not None else []
        self.sources = Sources(
            {str(s.automation.id): s.automation for s in automations},
            {s.sla.name: (s.id, s.sla) for s in slas},
        )

    # -- stored events ------------------------------------------------------------------

    async def evaluate(self, conn: AsyncConnection, documents: Sequence[dict[str, Any]]) -> Result:
        await lineage.record(conn, documents)
        signals = [s for d in documents if (s := self.sources.read(d)) is not None]
        if not signals:
            return Result()
        now = clock.now()
        fingerprints = sorted({s.fingerprint for s in signals})
        await db.lock_alerts(conn, fingerprints)
        current = await db.open_alerts(conn, fingerprints)
        messages: list[Message] = []
        firings: list[dict[str, Any]] = []
        joined: dict[str, _Joined] = {}
        resolved: list[Alert] = []
        opened: list[tuple[Alert, Signal]] = []
        walk: bool | None = None  # whether there is lineage to walk
        for signal in sorted(signals, key=lambda s: s.at):
            alert = current.get(signal.fingerprint)
            if not signal.opens:
                if alert is not None and signal.keep_firing_for is not None:
                    alert.resolve_at = signal.at + signal.keep_firing_for  # unless it fires
                    alert.resolved_by = f"{signal.kind} {signal.state}, kept firing for a while"
                    alert.changed = True
                elif alert is not None and _resolves(signal, alert):
                    resolve(alert, signal.at, f"{signal.kind} {signal.state}")
                    resolved.append(alert)
                    del current[signal.fingerprint]
                    messages.append(self._event(alert, "resolved", signal.at, signal.depth))
                continue
            if alert is None:
                alert = _opened(signal)
                if walk is None:  # once a batch: most engines keep no lineage at all
                    walk = await lineage.known(conn)
                await _impact(conn, alert, signal, walk)
                current[signal.fingerprint] = alert
                opened.append((alert, signal))
                messages.append(self._event(alert, "opened", signal.at, signal.depth))
                joins = True
            else:
                # A firing of an alert its groups hold already changes nothing they say;
                # an SLA's at-risk alert that misses joins the miss's actions' groups.
                joins = alert.labels.get("sla_state") != signal.labels.get("sla_state")
                _fed(alert, signal)
            firings.append(
                {
                    "alert_id": alert.id,
                    "firing_id": signal.firing_id,
                    "event_id": signal.event_id,
                    "fired": signal.at,
                    "state": signal.state,
                }
            )
            for action in signal.actions if joins else ():
                self._join(joined, action, signal, alert)
        if opened:
            messages += await self._silenced(conn, opened, now)
        await db.save_alerts(conn, [*[a for a in current.values() if a.changed], *resolved])
        await db.add_firings(conn, firings)
        groups = await self._joined(conn, joined, now)
        groups += await touch_groups(conn, [a.id for a in resolved], now)
        await write_outbox(conn, messages)
        dues = [g.due for g in groups if g.due is not None]
        dues += [a.resolve_at for a in current.values() if a.resolve_at is not None]
        return Result(messages=messages, next_due=min(dues) if dues else None)

    async def _silenced(
        self, conn: AsyncConnection, opened: list[tuple[Alert, Signal]], now: datetime
    ) -> list[Message]:
        """`tripwire.alert.silenced` for alerts that open muted."""
        muting = await read_muting(conn, now)
        return [
            self._event(alert, "silenced", signal.at, signal.depth, muting.why(alert))
            for alert, signal in opened
            if muting.muted(alert)
        ]

    def _event(
        self,
        alert: Alert,
        what: str,
        at: datetime,
        depth: int,
        extra: dict[str, Any] | None = None,
    ) -> Message:
        event = alert_event(alert, what, at, depth, extra)
        return event_message(event, self.subjects.events)

    def _join(
        self, joined: dict[str, _Joined], action: Action, signal: Signal, alert: Alert
    ) -> None:
        grouping = grouping_of(action)
        labels = by_values(grouping, {**alert.labels, "alert": alert.fingerprint})
        gid = group_id(_as_stored(action), labels)
        entry = joined.setdefault(gid, _Joined(None, action, signal, labels))
        entry.alert_ids.add(alert.id)

    async def _joined(
        self, conn: AsyncConnection, joined: dict[str, _Joined], now: datetime
    ) -> list[Group]:
        if not joined:
            return []
        ids = sorted(joined)
        await db.lock_groups(conn, ids)
        found = await db.load_groups(conn, ids)
        pairs: list[tuple[str, str]] = []
        for gid in ids:
            entry = joined[gid]
            group = found.get(gid)
            if group is None:
                group = found[gid] = Group(
                    id=gid,
                    action=_as_stored(entry.action),
                    source_kind=entry.signal.kind,
                    source_id=entry.signal.source_id,
                    source_name=entry.signal.name,
                    labels=entry.labels,
                )
            group.joined(grouping_of(entry.action), now)
            pairs += [(gid, a) for a in sorted(entry.alert_ids)]
        await db.add_members(conn, pairs)
        groups = list(found.values())
        await db.save_groups(conn, groups)
        return groups

    # -- the timer ----------------------------------------------------------------------

    async def evaluate_due(self, conn: AsyncConnection, now: datetime) -> Result:
        await expire_resolved(conn, await read_muting(conn, now, sources=False), now)
        messages = await self._alerts_due(conn, now)
        messages += await self._groups_due(conn, now)
        await write_outbox(conn, messages)
        await self._sweep(conn, now - self.retention)
        dues = [d for d in (await db.next_alert_due(conn), await db.next_group_due(conn)) if d]
        return Result(messages=messages, next_due=min(dues) if dues else None)

    async def _alerts_due(self, conn: AsyncConnection, now: datetime) -> list[Message]:
        due = await db.alerts_due(conn, now, DUE_BATCH)
        if not due:
            return []
        await db.lock_alerts(conn, sorted(a.fingerprint for a in due))
        fresh = await db.alerts_by_id(conn, [a.id for a in due])  # as they are under the lock
        messages: list[Message] = []
        changed: list[Alert] = []
        for alert in fresh.values():
            if not alert.open:
                continue
            if alert.resolve_at is not None and alert.resolve_at <= now:
                resolve(alert, alert.resolve_at, alert.resolved_by or "resolve_after")
                messages.append(self._event(alert, "resolved", alert.resolved or now, 0))
            elif alert.acknowledged_until is not None and alert.acknowledged_until <= now:
                alert.state, alert.acknowledged_until = AlertState.firing, None
                alert.changed = True
            else:
                continue
            changed.append(alert)
        await db.save_alerts(conn, changed)
        await touch_groups(conn, [a.id for a in changed], now)
        return messages

    async def _groups_due(self, conn: AsyncConnection, now: datetime) -> list[Message]:
        ids = await db.groups_due(conn, now, DUE_BATCH)
        if not ids:
            return []
        await db.lock_groups(conn, ids)
        groups = await db.load_groups(conn, ids)
        muting = await read_muting(conn, now)
        messages: list[Message] = []
        for group in groups.values():
            if group.due is None or group.due > now:
                continue  # decided by another pass meanwhile
            try:
                action = parse_action(group.action)
            except ValidationError as exc:
                log.warning("alert group %s: its action no longer loads (%s)", group.id, exc)
                group.due = None
                continue
            members = await db.members(conn, group.id)
            pending = [a.pending_until for a in members if a.open and _pending(a, now)]
            muted = frozenset(
                a.id for a in members if a.open and (_pending(a, now) or muting.muted(a))
            )
            grouping = grouping_of(action)
            notice, gone = decide(
                group,
                grouping,
                members,
                now,
                acknowledges=action.type == "pagerduty",
                muted=muted,
            )
            if muted:  # decide again when a silence ends, or an inhibiting alert resolves
                group.sooner(min(filter(None, (muting.next_change, now + grouping.interval))))
            for until in pending:  # and when an alert has been open for pending_for
                if until is not None:
                    group.sooner(until)
            await db.remove_members(conn, group.id, gone)
            if notice is not None:
                request = notice_request(group, notice, now)
                body = request.model_dump_json().encode()
                messages.append(Message(request.id, self.subjects.actions, body))
        await db.save_groups(conn, groups.values())
        return messages

    async def _sweep(self, conn: AsyncConnection, before: datetime) -> None:
        """Forget alerts resolved before `before`, with their firings and memberships."""
        old = select(alerts.c.id).where(alerts.c.resolved < before).limit(DUE_BATCH)
        ids = [r[0] for r in await conn.execute(old)]
        if ids:
            await conn.execute(delete(alert_firings).where(alert_firings.c.alert_id.in_(ids)))
            await conn.execute(
                delete(alert_group_members).where(alert_group_members.c.alert_id.in_(ids))
            )
            await conn.execute(delete(alerts).where(alerts.c.id.in_(ids)))


def _as_stored(action: Action) -> dict[str, Any]:
    """An action as its group keeps it: what was written (so defaults added later do not
    split a group), with its type."""
    stored = action.model_dump(mode="json", by_alias=True, exclude_unset=True)
    stored["type"] = action.type
    return stored


SHOWN_DOWNSTREAM = 5  # named in the summary; the alert holds the whole list


async def _impact(conn: AsyncConnection, alert: Alert, signal: Signal, walk: bool) -> None:
    """What is downstream of the alert's resource: its source's `downstream:` list, then
    the asset lineage (when `walk`: there is some); the first few join the summary, as
    messages show it."""
    found = list(signal.downstream)
    if walk and signal.resource_id:
        found += await lineage.downstream_of(conn, signal.resource_id)
    alert.downstream = list(dict.fromkeys(found))
    if alert.downstream:
        shown = ", ".join(alert.downstream[:SHOWN_DOWNSTREAM])
        more = len(alert.downstream) - SHOWN_DOWNSTREAM
        alert.summary += f"; downstream: {shown}" + (f" and {more} more" if more > 0 else "")


def _pending(alert: Alert, now: datetime) -> bool:
    """Open for less than its automation's pending_for: not told of yet."""
    return alert.pending_until is not None and now < alert.pending_until


def _resolves(signal: Signal, alert: Alert) -> bool:
    """An SLA's `met` clears only the at-risk alert of its window; a miss waits for its
    recovery."""
    return signal.state != "met" or alert.labels.get("sla_state") == "at-risk"


def _opened(signal: Signal) -> Alert:
    return Alert(
        id=str(uuid5(NAMESPACE, f"alert:{signal.fingerprint}:{signal.firing_id}")),
        fingerprint=signal.fingerprint,
        kind=signal.kind,
        source_id=signal.source_id,
        name=signal.name,
        key=signal.key,
        labels=signal.labels,
        severity=signal.severity,
        state=AlertState.firing,
        summary=signal.summary,
        first_fired=signal.at,
        last_fired=signal.at,
        pending_until=signal.at + signal.pending_for if signal.pending_for else None,
        resolve_at=signal.at + signal.resolve_after if signal.resolve_after else None,
        changed=True,
    )


def _fed(alert: Alert, signal: Signal) -> None:
    """Another firing of an open alert: it counts, and says what is newest."""
    alert.count += 1
    if signal.at >= alert.last_fired:
        alert.last_fired = signal.at
        alert.summary, alert.labels, alert.severity = signal.summary, signal.labels, signal.severity
    # A firing also cancels a resolution keep_firing_for was holding back.
    after = signal.resolve_after
    alert.resolve_at = alert.last_fired + after if after is not None else None
    alert.resolved_by = None
    alert.changed = True
