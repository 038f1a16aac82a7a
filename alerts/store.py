"""Alerts for people: list and read them, acknowledge and resolve them by hand.

Hand changes take the same locks as the alerts engine and write their events to the
same outbox, in one transaction; the caller publishes what `Result` holds after it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts import repository as db
from alerts.book import acknowledge, resolve, touch_groups
from alerts.model import Alert, AlertState
from alerts.muting import Muting, read_muting
from alerts.notices import alert_event
from alerts.tables import alert_group_members, alert_groups, alerts
from events import clock
from triggers.firing import event_message
from triggers.results import Result
from triggers.state import write_outbox

STATES = ("firing", "acknowledged", "resolved", "silenced", "inhibited")


class AlertNotFound(LookupError):
    """No alert with that id."""


class AlertResolved(ValueError):
    """The alert has resolved already: nothing to acknowledge or resolve."""


class AlertStore:
    """Reads and hand changes; `events_subject` is where alert events are published."""

    def __init__(self, engine: AsyncEngine, events_subject: str) -> None:
        self.engine = engine
        self.events_subject = events_subject

    async def page(
        self,
        *,
        state: str | None = None,
        name: str | None = None,
        before: datetime | tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Newest first (by last firing, then id); `before` pages on: a time, or the
        (last_fired, id) of a page's last alert to continue right after it even when
        others fired at the same moment. `state` may also be silenced or inhibited: open
        alerts muted now."""
        muted = state in ("silenced", "inhibited")
        query = select(alerts).order_by(alerts.c.last_fired.desc(), alerts.c.id)
        if muted:  # decided after reading: every open alert, the limit applied then
            query = query.where(alerts.c.open_fingerprint.is_not(None))
        elif state is not None:
            query = query.where(alerts.c.state == state).limit(limit)
        else:
            query = query.limit(limit)
        if name is not None:
            query = query.where(alerts.c.name == name)
        if isinstance(before, tuple):
            fired, key = before
            query = query.where(
                (alerts.c.last_fired < fired)
                | ((alerts.c.last_fired == fired) & (alerts.c.id > key))
            )
        elif before is not None:
            query = query.where(alerts.c.last_fired < before)
        async with self.engine.connect() as conn:
            found = [Alert.from_row(r) for r in (await conn.execute(query)).all()]
            if not muted:
                return found
            muting = await read_muting(conn, clock.now())
        key = "silenced_by" if state == "silenced" else "inhibited_by"
        return [a for a in found if muting.why(a)[key]][:limit]

    async def muting(self) -> Muting:
        """What mutes alerts now, to show beside them."""
        async with self.engine.connect() as conn:
            return await read_muting(conn, clock.now())

    async def get(self, alert_id: str) -> tuple[Alert, list[dict[str, Any]], list[dict[str, Any]]]:
        """The alert, the firings that fed it (newest first) and its notification groups."""
        async with self.engine.connect() as conn:
            found = await db.alerts_by_id(conn, [alert_id])
            if alert_id not in found:
                raise AlertNotFound(f"no alert {alert_id}; `tripwire alerts ls` lists them")
            firings = [
                {
                    "firing_id": r.firing_id,
                    "event_id": r.event_id,
                    "fired": r.fired.isoformat(),
                    "state": r.state,
                }
                for r in await db.firings_of(conn, alert_id)
            ]
            query = (
                select(alert_groups)
                .join(alert_group_members, alert_group_members.c.group_id == alert_groups.c.id)
                .where(alert_group_members.c.alert_id == alert_id)
            )
            groups = [
                {
                    "group": r.id[:32],
                    "action": r.action.get("type"),
                    "labels": r.labels,
                    "status": r.status,
                    "sent": r.sent.isoformat() if r.sent else None,
                    "next": r.due.isoformat() if r.due else None,
                }
                for r in (await conn.execute(query)).all()
            ]
        return found[alert_id], firings, groups

    async def acknowledge(
        self,
        alert_id: str,
        *,
        for_: timedelta | None = None,
        by: str | None = None,
        comment: str | None = None,
    ) -> tuple[Alert, Result]:
        """Someone is on it: no repeats until it runs out (`for_`) or the alert resolves."""
        now = clock.now()
        until = now + for_ if for_ is not None else None
        return await self._change(
            alert_id, lambda a: acknowledge(a, now, until, by, comment), "acknowledged", now
        )

    async def resolve(
        self, alert_id: str, *, by: str | None = None, comment: str | None = None
    ) -> tuple[Alert, Result]:
        """Resolved by hand: its groups send their resolved notices."""
        now = clock.now()

        def resolved(alert: Alert) -> None:
            resolve(alert, now, f"hand ({by})" if by else "hand")
            if comment:
                alert.comment = comment

        return await self._change(alert_id, resolved, "resolved", now)

    async def _change(
        self, alert_id: str, change: Any, what: str, now: datetime
    ) -> tuple[Alert, Result]:
        async with self.engine.begin() as conn:
            found = await db.alerts_by_id(conn, [alert_id])
            if alert_id not in found:
                raise AlertNotFound(f"no alert {alert_id}; `tripwire alerts ls` lists them")
            await db.lock_alerts(conn, [found[alert_id].fingerprint])
            alert = (await db.alerts_by_id(conn, [alert_id]))[alert_id]  # under the lock
            if alert.state is AlertState.resolved:
                raise AlertResolved(
                    f"alert {alert_id} resolved at {alert.resolved:%Y-%m-%d %H:%M:%S} UTC "
                    f"({alert.resolved_by}); nothing to change"
                )
            change(alert)
            await db.save_alerts(conn, [alert])
            groups = await touch_groups(conn, [alert.id], now)
            message = event_message(alert_event(alert, what, now), self.events_subject)
            await write_outbox(conn, [message])
        dues = [g.due for g in groups if g.due is not None]
        return alert, Result(messages=[message], next_due=min(dues) if dues else None)
