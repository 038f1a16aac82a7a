"""Silences for people: add one by hand, list them with the maintenance windows, expire
one early. Adding one announces `tripwire.alert.silenced` for each open alert it covers."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.matchers import matches
from alerts.model import Alert
from alerts.muting import read_muting, silence_json
from alerts.notices import alert_event
from alerts.schedule import next_change
from alerts.silences import AdHocSilence, RecurringSilence
from alerts.tables import alerts, recurring_silences, silences
from events import clock
from triggers.firing import event_message
from triggers.results import Result
from triggers.state import write_outbox


class SilenceNotFound(LookupError):
    """No silence with that id."""


class SilenceExpired(ValueError):
    """The silence has ended already."""


class SilenceStore:
    """Hand silences in the `silences` table; windows come from definitions files."""

    def __init__(self, engine: AsyncEngine, events_subject: str) -> None:
        self.engine = engine
        self.events_subject = events_subject

    async def add(self, body: AdHocSilence) -> tuple[dict[str, Any], Result]:
        """Store the silence; announce it for the open alerts it covers already."""
        now = clock.now()
        starts = body.starts or now
        ends = body.ends or (starts + body.for_ if body.for_ is not None else None)
        if ends is not None and ends <= max(starts, now):
            raise ValueError(f"ends {ends.isoformat()} is not after it starts (or now)")
        row = {
            "id": str(uuid4()),
            "matchers": [str(m) for m in body.match],
            "starts": starts,
            "ends": ends,
            "until_resolved": body.until_resolved,
            "actions": body.actions,
            "created_by": body.created_by,
            "comment": body.comment,
            "created": now,
            "expired": None,
        }
        async with self.engine.begin() as conn:
            await conn.execute(insert(silences).values(**row))
            messages = []
            if starts <= now:
                muting = await read_muting(conn, now, sources=False)
                mine = [s for s in muting.silences if s.id == row["id"]]
                query = select(alerts).where(alerts.c.open_fingerprint.is_not(None))
                for found in (await conn.execute(query)).all():
                    alert = Alert.from_row(found)
                    if mine and matches(mine[0].matchers, alert.labels):
                        why = {"silenced_by": [s.label for s in muting.silenced_by(alert.labels)]}
                        event = alert_event(alert, "silenced", now, 0, why)
                        messages.append(event_message(event, self.events_subject))
            await write_outbox(conn, messages)
            stored = (await conn.execute(select(silences).where(silences.c.id == row["id"]))).one()
        return silence_json(stored, now), Result(messages=messages, next_due=ends)

    async def listing(self, *, everything: bool = False) -> list[dict[str, Any]]:
        """Hand silences in force or to come (`everything`: expired ones too, newest
        first), then each maintenance window with whether it is open now."""
        now = clock.now()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(silences).order_by(silences.c.created.desc()))).all()
            windows = (await conn.execute(select(recurring_silences))).all()
        found = [silence_json(r, now) for r in rows]
        if not everything:
            found = [s for s in found if s["state"] != "expired"]
        for row in sorted(windows, key=lambda r: r.name):
            recurring = RecurringSilence.model_validate(row.definition)
            window = recurring.window(now)
            found.append(
                {
                    "id": recurring.name,
                    "kind": "window",
                    "state": "active" if window else "waiting",
                    "matchers": [str(m) for m in recurring.match],
                    "starts": window[0].isoformat() if window else None,
                    "ends": window[1].isoformat() if window else None,
                    "next_change": next_change(recurring.schedule, now).isoformat(),
                    "schedule": recurring.schedule.model_dump(mode="json"),
                    "actions": recurring.actions,
                    "comment": recurring.comment,
                }
            )
        return found

    async def expire(self, silence_id: str) -> dict[str, Any]:
        """End a hand silence now; its alerts notify again on their groups' next turn."""
        now = clock.now()
        async with self.engine.begin() as conn:
            query = select(silences).where(silences.c.id == silence_id)
            row = (await conn.execute(query)).one_or_none()
            if row is None:
                raise SilenceNotFound(
                    f"no silence {silence_id}; `tripwire silence ls` lists them (a window "
                    "from a definitions file ends when its file no longer defines it)"
                )
            if silence_json(row, now)["state"] == "expired":
                raise SilenceExpired(f"silence {silence_id} has ended already")
            await conn.execute(
                update(silences).where(silences.c.id == silence_id).values(expired=now)
            )
            row = (await conn.execute(query)).one()
        return silence_json(row, now)
